"""Every typed error a user can meet while loading, with what it says to do."""

from __future__ import annotations

import pytest
import torch

from assistant.config import Settings
from assistant.engine import Engine
from assistant.errors import (
    AssistantError,
    MissingDependency,
    ModelNotAvailable,
    OutOfMemory,
    UnsupportedCheckpoint,
)


def test_text_only_checkpoint_is_unsupported_and_says_what_it_is(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, vocab_size=50)).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedCheckpoint) as err:
        Engine.load(Settings().engine, str(tmp_path))
    assert "model_type='llama'" in str(err.value)
    assert "LlamaForCausalLM" in str(err.value)


def test_hub_id_without_hub_says_how_to_use_a_local_dir():
    with pytest.raises(ModelNotAvailable) as err:
        Engine.load(Settings().engine, "nobody/no-such-vlm")
    message = str(err.value)
    assert "'nobody/no-such-vlm'" in message and "--model DIR" in message
    assert "hf download nobody/no-such-vlm" in message


@pytest.mark.parametrize("path", ["./not-here", "/no/such/dir/model"])
def test_missing_directory(path):
    with pytest.raises(ModelNotAvailable, match="no such directory"):
        Engine.load(Settings().engine, path)


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelNotAvailable, match="has no config.json"):
        Engine.load(Settings().engine, str(tmp_path))


def test_missing_bitsandbytes_names_the_extra(tiny_dirs, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(MissingDependency) as err:
        Engine.load(Settings(quant="4bit").engine, tiny_dirs["llava"])
    assert "bitsandbytes" in str(err.value) and "multimodal-assistant[gpu]" in str(err.value)


def test_out_of_memory_while_loading_gives_advice(tiny_dirs, monkeypatch):
    from transformers import AutoModelForImageTextToText

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", oom)
    with pytest.raises(OutOfMemory) as err:
        Engine.load(Settings().engine, tiny_dirs["llava"])
    assert "loading" in str(err.value) and "--quant 4bit" in str(err.value)
    assert "--device cpu" in str(err.value)


def test_bad_settings_name_the_field():
    with pytest.raises(AssistantError, match="quant must be one of auto, none, 8bit, 4bit, int8, int4, int4-mlp; got '3bit'"):
        Settings(quant="3bit")
