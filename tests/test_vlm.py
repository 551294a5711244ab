"""The composed model on tiny random hub-style backbones (CLIP / SigLIP vision + Llama): it
composes with each bridge, saves as one checkpoint directory, and the engine loads and streams
from it like any other checkpoint."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def composed(backbones, tmp_path_factory):
    """bridge -> directory of a composed (untrained) CLIP + Llama model."""
    from assistant.models.compose import compose

    root = tmp_path_factory.mktemp("composed")
    out = {}
    for bridge in ("linear", "mlp2x_gelu", "qformer"):
        model, processor = compose(backbones["clip_vision"], backbones["llama"], bridge=bridge,
                                   num_queries=3)
        model.save_pretrained(root / bridge)
        processor.save_pretrained(root / bridge)
        out[bridge] = str(root / bridge)
    return out


@pytest.mark.parametrize("bridge, tokens", [("linear", 4), ("mlp2x_gelu", 4), ("qformer", 3)])
def test_image_tokens_follow_from_the_config(composed, bridge, tokens):
    from transformers import AutoConfig, AutoProcessor

    import assistant.vlm  # noqa: F401  (registers the composed model)

    config = AutoConfig.from_pretrained(composed[bridge])
    # 28 px CLIP with 14 px patches: a 2x2 grid after the CLS token is dropped.
    assert config.vision_feature_select_strategy == "default"
    assert config.image_seq_length == tokens
    processor = AutoProcessor.from_pretrained(composed[bridge])
    assert processor.num_image_tokens == tokens


def test_offline_grid_sizes():
    from assistant.vlm.configuration import ComposedVLMConfig, EfficientNetLiteConfig

    lite = EfficientNetLiteConfig()
    assert ComposedVLMConfig(vision_config=lite).image_seq_length == 49
    assert ComposedVLMConfig(vision_config=lite, image_grid=3).image_seq_length == 9
    assert ComposedVLMConfig(vision_config=lite, bridge="qformer", num_queries=32).image_seq_length == 32
    clip_l = dict(model_type="clip_vision_model", image_size=336, patch_size=14)
    assert ComposedVLMConfig(vision_config=clip_l).image_seq_length == 576


@pytest.mark.parametrize("bridge", ["linear", "mlp2x_gelu", "qformer"])
def test_engine_streams_from_a_composed_checkpoint(composed, bridge, red, blue):
    from assistant.config import Settings
    from assistant.conversation import Conversation
    from assistant.engine import Engine

    engine = Engine.load(Settings(max_new_tokens=5, seed=0).engine, composed[bridge])
    assert type(engine.loaded.model).__name__ == "ComposedVLMForConditionalGeneration"
    conv = Conversation()
    conv.add_user("what is here?", [red, blue])
    reply = engine.stream(conv)
    text = "".join(reply.stream)
    assert reply.stream.done and isinstance(text, str)
    n = engine.loaded.model.config.image_seq_length
    assert reply.fitted.image_tokens == 2 * n


def test_whole_clip_checkpoint_gives_its_vision_half(backbones):
    from assistant.models.compose import compose

    model, _ = compose(backbones["clip"], backbones["llama"], bridge="linear")
    assert type(model.vision_tower).__name__ == "CLIPVisionModel"


def test_siglip_has_no_class_token(backbones):
    from assistant.models.compose import compose

    model, processor = compose(backbones["siglip_vision"], backbones["llama"])
    assert model.config.vision_feature_select_strategy == "full"
    assert model.config.image_seq_length == processor.num_image_tokens == 4


def test_quantization_keeps_vision_and_bridge_in_full_precision(composed):
    from assistant.engine.loader import read_config
    from assistant.engine.quant import full_precision_modules

    skip = full_precision_modules(read_config(composed["mlp2x_gelu"]))
    assert skip == ["vision_tower", "bridge", "language_model.lm_head"]


def test_placeholders_must_match_images(composed):
    from transformers import AutoModelForImageTextToText

    import assistant.vlm  # noqa: F401

    model = AutoModelForImageTextToText.from_pretrained(composed["linear"])
    image_id = model.config.image_token_id
    ids = torch.tensor([[5, image_id, image_id, 6]])  # 2 placeholders, 4 needed
    with pytest.raises(ValueError, match="2 image placeholder tokens for 4 image embeddings"):
        model(input_ids=ids, pixel_values=torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match="no pixel_values"):
        model(input_ids=ids)


def test_bridge_standardizes_with_measured_statistics():
    from assistant.vlm.bridge import Bridge
    from assistant.vlm.configuration import ComposedVLMConfig, EfficientNetLiteConfig

    config = ComposedVLMConfig(vision_config=EfficientNetLiteConfig(),
                               text_config=dict(model_type="llama", hidden_size=16,
                                                num_attention_heads=2, num_key_value_heads=1,
                                                intermediate_size=32, num_hidden_layers=1),
                               image_grid=3)
    bridge = Bridge(config)
    features = torch.randn(6, 49, 1280) * torch.linspace(0.01, 100, 1280) + 5
    bridge.set_feature_stats(features)
    normed = (features - bridge.feature_mean) / bridge.feature_std
    assert normed.mean().abs() < 1e-3 and (normed.std(dim=(0, 1)) - 1).abs().max() < 1e-3
    assert bridge(features).shape == (6, 9, 16)


def test_composed_language_model_stays_causal(backbones, composed):
    """Composing around pretrained modules must keep their attention set up: a language model
    that sees future tokens trains to a loss of zero and answers nonsense once loaded."""
    from transformers import AutoModelForImageTextToText

    from assistant.models.compose import compose

    fresh, _ = compose(backbones["clip_vision"], backbones["llama"])
    loaded = AutoModelForImageTextToText.from_pretrained(composed["mlp2x_gelu"])
    ids = torch.tensor([[7, 8, 9, 10, 11]])
    for model in (fresh, loaded):
        assert model.language_model.config._attn_implementation is not None
        with torch.no_grad():
            full, prefix = model(input_ids=ids).logits, model(input_ids=ids[:, :3]).logits
        torch.testing.assert_close(full[:, :3], prefix, atol=1e-5, rtol=1e-4)


def test_image_words_are_mixtures_of_word_embeddings(backbones, tmp_path, red):
    """With `image_words`, each image token is a softmax mixture of the language model's
    embedding rows: at a low temperature, exactly the row of the bridge's best word."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from assistant.models.compose import compose

    model, processor = compose(backbones["clip_vision"], backbones["llama"], image_words=True)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path)
    assert model.config.image_words
    pixels = AutoProcessor.from_pretrained(tmp_path).image_processor(
        [red], return_tensors="pt")["pixel_values"]
    table = model.get_input_embeddings().weight
    with torch.no_grad():
        tokens = model.bridge(model.vision_features(pixels))
        best = (tokens @ table.T).argmax(-1)
        model.config.image_word_temperature = 1e-4
        assert torch.allclose(model.get_image_features(pixels), table[best], atol=1e-5)
        model.config.image_word_temperature = 1e4  # near uniform: the table's mean
        mean = table.mean(0).expand_as(tokens)
        assert torch.allclose(model.get_image_features(pixels), mean, atol=1e-3)
