"""Settings from the environment and the command line, with errors naming the variable."""

from __future__ import annotations

import argparse

import pytest

from assistant.config import Settings, add_arguments, from_args
from assistant.errors import AssistantError


def test_environment_is_parsed_by_type():
    s = Settings.from_env({"ASSISTANT_QUANT": "4bit", "ASSISTANT_MAX_NEW_TOKENS": "64",
                           "ASSISTANT_TEMPERATURE": "0.5", "ASSISTANT_STOP": "</s>,###",
                           "ASSISTANT_SHARE": "no", "ASSISTANT_SEED": "3"})
    assert (s.quant, s.max_new_tokens, s.temperature, s.stop, s.share, s.seed) == (
        "4bit", 64, 0.5, ["</s>", "###"], False, 3)


@pytest.mark.parametrize("env, message", [
    ({"ASSISTANT_MAX_NEW_TOKENS": "many"}, "ASSISTANT_MAX_NEW_TOKENS"),
    ({"ASSISTANT_SHARE": "maybe"}, "expected true or false"),
    ({"ASSISTANT_DEVICE": "tpu"}, "device must be one of"),
    ({"ASSISTANT_TOP_P": "0"}, "top_p must be in"),
])
def test_bad_environment_values_are_named(env, message):
    with pytest.raises(AssistantError, match=message):
        Settings.from_env(env)


def test_command_line_overrides_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--quant", "8bit", "--stop", "A", "--stop", "B"])
    s = from_args(args, {"ASSISTANT_QUANT": "4bit", "ASSISTANT_MODEL": "some/dir"})
    assert (s.quant, s.model, s.stop) == ("8bit", "some/dir", ["A", "B"])


def test_private_by_default():
    s = Settings()
    assert s.host == "127.0.0.1" and s.share is False


def test_each_group_is_a_view_of_settings_fields_of_the_same_name_and_type():
    from dataclasses import fields

    from assistant import config

    flat = {f.name: f.type for f in fields(Settings)}
    groups = [config.ToolSettings, config.AgentSettings, config.GenerationDefaults,
              config.InputLimits, config.ApiSettings]
    for group in groups:
        for f in fields(group):
            assert flat.get(f.name) == f.type, f"{group.__name__}.{f.name}"
    s = Settings(detect_model="owlvit", agent_max_steps=2, max_new_tokens=9, api_key="k",
                 max_images_per_chat=3)
    assert (s.tools.detect_model, s.agent.agent_max_steps, s.generation.max_new_tokens,
            s.api.api_key, s.limits.max_images_per_chat) == ("owlvit", 2, 9, "k", 3)
    with pytest.raises(AttributeError):  # a component cannot change what others read
        s.tools.detect_model = "haar"


def test_the_pdf_page_limit_comes_from_the_environment_or_a_flag():
    from assistant.errors import BadSetting

    assert Settings().max_pdf_pages == 20 and Settings().limits.max_pdf_pages == 20
    assert Settings.from_env({"ASSISTANT_MAX_PDF_PAGES": "3"}).limits.max_pdf_pages == 3
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_args(parser.parse_args(["--max-pdf-pages", "7"]), {}).max_pdf_pages == 7
    with pytest.raises(BadSetting, match="max_pdf_pages"):
        Settings(max_pdf_pages=0)
