"""Agent training conversations: valid calls under the compact agent prompt, held out from the
routing dev set, encoded exactly as the agent prompts at chat time, and trainable next to
pictureless samples."""

from __future__ import annotations

import torch

from assistant.agent import protocol
from assistant.agent.routing import DEV_SET, load_cases
from assistant.config import Settings
from assistant.train import agent_data
from assistant.train.trainer import Trainer
from tests.test_train import _compose, _recipe
from tests.test_vlm import backbones  # noqa: F401  (session fixture)
from tools.registry import build


def test_every_generated_call_is_valid_for_its_tool_and_no_request_is_a_dev_sentence():
    loaded = agent_data.generate(48, seed=3, with_observations=0)
    registry = build(Settings())
    dev = {agent_data._norm(c["text"]) for c in load_cases(DEV_SET)}
    strata = {s.stratum for s in loaded.samples}
    assert {"ocr", "classify", "detect", "caption", "generate_image", "edit_image", "direct",
            "chat"} <= strata
    for sample in loaded.samples:
        assert sample.system.startswith("Tools: caption, vqa, ocr")
        if sample.stratum in ("direct", "chat"):  # easy-VQA's own questions; small talk
            continue
        assert agent_data._norm(sample.turns[0][1]) not in dev
        call = protocol.read(sample.turns[1][1], registry.names)
        assert isinstance(call, protocol.Call), sample.turns
        registry[call.name].Args.model_validate(call.arguments)  # raises if invalid
        assert bool(sample.image_key) == (call.name != "generate_image")


def test_observation_answers_use_what_the_real_tool_said():
    loaded = agent_data.generate(30, seed=4, with_observations=1.0)
    ocr = [s for s in loaded.samples if s.stratum == "ocr+answer"]
    assert ocr
    for s in ocr:
        observation, answer = s.turns[2][1], s.turns[3][1]
        assert observation.startswith('<observation tool="ocr"')
        said = answer.removeprefix('It says "').removesuffix('".')
        assert said and all(word in observation for word in said.split())


def test_the_compact_prompt_tokens_match_the_agent_and_pictureless_samples_train(
        backbones, tmp_path):  # noqa: F811
    from PIL import Image

    from assistant.agent.loop import system_prompt
    from assistant.conversation import Conversation

    model, processor = _compose(_recipe(backbones))
    trainer = Trainer(model, processor, tmp_path, progress=False)
    loaded = agent_data.generate(12, seed=5, with_observations=0)
    ocr = next(s for s in loaded.samples if s.stratum == "ocr")
    conv = Conversation()
    conv.add_user(ocr.turns[0][1], [Image.new("RGB", ocr.load().size)])
    conv.system = system_prompt(build(Settings()), conv, "compact")
    assert conv.system == ocr.system  # trained under exactly the prompt the agent writes
    encoded = trainer.encoder(ocr)
    chat_ids = trainer.encoder.builder.encode(conv.turns, conv)["input_ids"][0].tolist()
    assert encoded.input_ids[:len(chat_ids)] == chat_ids
    drawing = next(s for s in loaded.samples if s.stratum == "generate_image")
    batch = [loaded.samples.index(ocr), loaded.samples.index(drawing)]
    trainer.features.ensure(loaded.samples, progress=False)
    loss = trainer._step(batch, loaded.samples)
    assert torch.isfinite(loss) and "" not in trainer.features.features
