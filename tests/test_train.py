"""The training recipe on tiny random hub-style backbones: both stages learn, a run resumes
after an interruption to the same weights, the adapter rebuilds the same model, and the
command line trains and evaluates end to end."""

from __future__ import annotations

import json

import pytest
import torch

from assistant.errors import AssistantError
from assistant.models.adapter import merge_lora
from assistant.models.recipe import ADAPTER, RECIPE, StagePlan, assemble, save_adapter
from assistant.train import synthetic
from assistant.train.encode import collate
from assistant.train.trainer import Trainer, answer_loss
from tests.recipes import compose_recipe, tiny_recipe

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("bridge", ["mlp2x_gelu", "qformer"])
def test_both_stages_lower_the_loss(backbones, tmp_path, bridge):  # noqa: F811
    recipe = tiny_recipe(backbones, bridge)
    model, processor = compose_recipe(recipe)
    frozen = {k: v.clone() for k, v in model.language_model.state_dict().items()}
    trainer = Trainer(model, processor, tmp_path, progress=False, lora=recipe.lora)
    captions = synthetic.generate(8, seed=1).samples
    first = trainer.run(recipe.stages[0], captions)
    assert sum(first[-5:]) < sum(first[:5])
    # Stage 1 leaves the language model untouched.
    assert all(torch.equal(v, model.language_model.state_dict()[k]) for k, v in frozen.items())
    instructions = synthetic.generate(8, seed=2, captions=False).samples
    second = trainer.run(recipe.stages[1], instructions)
    assert sum(second[-5:]) < sum(second[:5])
    lora = [n for n, p in model.language_model.named_parameters() if "lora_" in n]
    assert lora and all(".q_proj." in n or ".v_proj." in n for n in lora)


def test_answer_loss_is_the_models_own_loss(backbones, tmp_path):  # noqa: F811
    """The training loss skips the vocabulary projection off the answers: same value."""
    model, processor = compose_recipe(tiny_recipe(backbones))
    trainer = Trainer(model, processor, tmp_path, progress=False)
    samples = synthetic.generate(3, seed=4, captions=False).samples
    trainer.features.ensure(samples, progress=False)
    batch = collate([trainer.encoder(s) for s in samples], trainer.pad_id)
    embeds = model.bridge(trainer.features.stack([s.image_key for s in samples]), reduced=True)
    expected = model(**batch, image_embeds=embeds).loss
    assert torch.allclose(answer_loss(model, batch, embeds), expected, atol=1e-5)


def test_alignment_puts_caption_words_nearest_to_image_tokens(backbones, tmp_path):  # noqa: F811
    recipe = tiny_recipe(backbones)
    model, processor = compose_recipe(recipe)
    trainer = Trainer(model, processor, tmp_path, progress=False)
    samples = synthetic.generate(8, seed=1).samples
    words = trainer.caption_words(samples[0])
    tokenizer = processor.tokenizer
    assert [tokenizer.decode([w]).strip() for w in words][:2] != ["a", "the"]

    def hits() -> float:
        trainer.features.ensure(samples, progress=False)
        table = model.get_input_embeddings().weight
        found = total = 0
        with torch.no_grad():
            for s in samples:
                tokens = model.bridge(trainer.features.stack([s.image_key]), reduced=True)[0]
                nearest = set((tokens @ table.T).argmax(-1).tolist())
                found += len(nearest & set(trainer.caption_words(s)))
                total += len(trainer.caption_words(s))
        return found / total

    before = hits()
    losses = trainer.run(StagePlan(1, 60, 8, 1e-2, objective="align", negatives=64), samples)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert hits() > max(0.3, before + 0.2)


def test_align_is_a_stage_one_objective():
    with pytest.raises(AssistantError, match="stage 1 only"):
        StagePlan(2, 10, objective="align")
    with pytest.raises(AssistantError, match="unknown objective"):
        StagePlan(1, 10, objective="guess")


def test_resume_after_interruption_gives_the_same_weights(backbones, tmp_path, monkeypatch):  # noqa: F811
    recipe = tiny_recipe(backbones, steps=(12, 0))
    samples = synthetic.generate(8, seed=1).samples

    model, processor = compose_recipe(recipe)
    Trainer(model, processor, tmp_path / "straight", progress=False).run(recipe.stages[0], samples)
    expected = model.bridge.state_dict()

    model, processor = compose_recipe(recipe)
    calls = {"n": 0}
    step = Trainer._step

    def interrupted(self, *args):
        calls["n"] += 1
        if calls["n"] == 8:  # after the checkpoint at step 5, before the one at 10
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(Trainer, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, processor, tmp_path / "resumed", progress=False).run(recipe.stages[0], samples)
    monkeypatch.setattr(Trainer, "_step", step)
    model, processor = compose_recipe(recipe)  # a fresh process would start from scratch
    losses = Trainer(model, processor, tmp_path / "resumed", progress=False).run(
        recipe.stages[0], samples)
    assert len(losses) == 12
    for k, v in expected.items():
        torch.testing.assert_close(model.bridge.state_dict()[k], v)


def test_adapter_rebuilds_the_trained_model(backbones, tmp_path):  # noqa: F811
    recipe = tiny_recipe(backbones, steps=(3, 3))
    model, processor = compose_recipe(recipe)
    trainer = Trainer(model, processor, tmp_path, progress=False, lora=recipe.lora)
    trainer.run(recipe.stages[0], synthetic.generate(4, seed=1).samples)
    trainer.run(recipe.stages[1], synthetic.generate(4, seed=2, captions=False).samples)
    recipe.save(tmp_path / RECIPE)
    save_adapter(model, tmp_path / ADAPTER)
    merge_lora(model.language_model)
    rebuilt, _ = assemble(tmp_path, cache_dir=None)
    ids = torch.tensor([[7, 8, 9, 10]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(input_ids=ids).logits, model(input_ids=ids).logits)
    assert not any("lora_" in n for n, _ in rebuilt.named_parameters())


def test_a_changed_recipe_does_not_resume(backbones, tmp_path):  # noqa: F811
    from assistant.train.__main__ import train

    recipe = tiny_recipe(backbones, steps=(2, 0))
    recipe.save(tmp_path / RECIPE)
    other = tiny_recipe(backbones, steps=(3, 0))
    with pytest.raises(AssistantError, match="another recipe"):
        train(other, tmp_path, cache_dir="", progress=False)


def test_command_line_trains_then_evaluates(backbones, tmp_path, capsys):  # noqa: F811
    from assistant.eval import cli as evaluation
    from assistant.train.__main__ import main

    data = tmp_path / "data.json"
    from PIL import Image

    Image.new("RGB", (16, 16), "blue").save(tmp_path / "b.png")
    data.write_text(json.dumps([{"image": "b.png", "conversations": [
        {"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "blue"}]},
        {"image": "gone.png", "conversations": []}]))
    out = tmp_path / "run"
    args = ["--out", str(out), "--vision", backbones["clip_vision"], "--text", backbones["llama"],
            "--image-grid", "0", "--stage1-data", "synthetic-captions:4", "--stage1-steps", "2",
            "--stage2-data", str(data), "--stage2-steps", "2", "--batch-size", "2", "--quiet",
            "--align-steps", "3"]
    assert main(args) == 2
    assert "data.json, line" in capsys.readouterr().err
    assert not list(out.glob("*.pt"))  # the data is checked before training starts
    assert main(args + ["--skip-bad"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in summary["stages"]] == ["stage1-align", "stage1-lm", "stage2-lm"]
    assert summary["stages"][2]["skipped"] == 1 and summary["stages"][2]["samples"] == 1
    assert (out / ADAPTER).stat().st_size < 2_000_000
    assert "agent_prompt" not in json.loads((out / "model" / "config.json").read_text())
    assert evaluation.main(["vqa", "--limit", "12", "--model", str(out / "model"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 12 and 0 <= result["accuracy"] <= 1
    assert sum(r["n"] for r in result["by_type"].values()) == 12


def test_normalisation():
    from assistant.eval.vqa import normalize

    assert normalize(" A Red circle. ") == "red circle"
    assert normalize("Yes!") == "yes"


def test_qlora_trains_over_a_4bit_language_model(backbones, tmp_path):  # noqa: F811
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from assistant.train.__main__ import train

    recipe = tiny_recipe(backbones, steps=(4, 12))
    recipe.quant = "4bit"
    summary = train(recipe, tmp_path, cache_dir="", progress=False)
    last = summary["stages"][-1]
    assert last["loss_last"] < last["loss_first"]
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "model")
    q = model.language_model.model.layers[0].self_attn.q_proj
    assert type(q) is torch.nn.Linear  # merged into full precision, not saved in 4-bit
    base = AutoModelForCausalLM.from_pretrained(backbones["llama"]).model.layers[0].self_attn.q_proj
    assert not torch.allclose(q.weight, base.weight)


@pytest.mark.parametrize("text", ["llama", "smollm2-like"])
def test_training_tokens_are_the_chat_tokens(backbones, text, tmp_path):  # noqa: F811
    """The prompt part of a training sample tokenizes exactly as the engine encodes the same
    turn for chat (BOS included when the tokenizer adds one and the template did not)."""
    from PIL import Image

    from assistant.conversation import Conversation
    from assistant.train.data import Sample
    from assistant.train.encode import IGNORE, Encoder

    model, processor = compose_recipe(tiny_recipe(backbones))
    if text == "smollm2-like":  # a template that writes the BOS itself
        processor.tokenizer.bos_token = "<|im_start|>"
    encoder = Encoder(processor, model.config.image_token_id, model.config.image_seq_length)
    image = Image.new("RGB", (16, 16), "red")
    encoded = encoder(Sample("k", [("user", "what colour?"), ("assistant", "red")],
                             lambda: image))
    conv = Conversation()
    conv.add_user("what colour?", [image])
    chat_ids = encoder.builder.encode(conv.turns, conv)["input_ids"][0].tolist()
    prompt_len = encoded.labels.index(next(x for x in encoded.labels if x != IGNORE))
    assert encoded.input_ids[:prompt_len] == chat_ids
