"""The tools' hub backends on tiny random checkpoints of the real architectures (BLIP, BLIP-2,
BLIP-VQA, CLIP, OWL-ViT, DETR, Stable Diffusion, InstructPix2Pix), chosen by settings and loaded
through `from_pretrained` like a download. Random weights say nothing true: these tests check
the plumbing (inputs, outputs, boxes, seeds, budget, errors), not the answers. Which weights a
download fetches and the budget counts is checked on dummy repositories laid out like the hub's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.tinykit.tool_models import TOOL_MODELS, build_tool_model
from tools.hub import count_parameters, local_path
from tools.registry import build


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_dirs) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-tools")
    dirs = {k: str(build_tool_model(k, root / k)) for k in TOOL_MODELS}
    dirs["blip2"] = tiny_dirs["blip2"]
    return dirs


@pytest.fixture
def chat():
    conv = Conversation()
    rng = np.random.default_rng(0)
    conv.add_user("look", [Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)),
                           Image.new("RGB", (64, 64), (200, 30, 30))])
    return conv


@pytest.mark.parametrize("kind", ["blip", "blip2"])
def test_hub_caption(tiny, chat, kind):
    registry = build(Settings(caption_model=tiny[kind]).tools)
    out = registry.call("caption", {"image": "#1"}, chat)
    assert not out.error, out.text
    assert out.data["caption"] and out.text.startswith(f"{tiny[kind]} describes #1: ")
    assert registry["caption"].backend == tiny[kind]


@pytest.mark.parametrize("kind", ["blip_vqa", "blip2"])
def test_hub_vqa(tiny, chat, kind):
    registry = build(Settings(vqa_model=tiny[kind]).tools)
    out = registry.call("vqa", {"image": "#2", "question": "what colour is it?"}, chat)
    assert not out.error, out.text
    assert isinstance(out.data["answer"], str) and "answers about #2" in out.text
    assert "Question:" not in out.data["answer"]  # the prompt is not echoed back


def test_the_main_model_answers_vqa_and_captions(engines, chat):
    registry = build(Settings(caption_model="main").tools, engine=lambda: engines("llava"))
    asked = registry.call("vqa", {"image": "#1", "question": "what is here?"}, chat)
    described = registry.call("caption", {"image": "#1"}, chat)
    assert not asked.error and not described.error, (asked.text, described.text)
    assert asked.data["backend"] == described.data["backend"] == engines("llava").name
    assert registry.budget.used("cpu") == 0  # the chat model is not the tools' to budget


def test_clip_scores_only_the_given_labels(tiny, chat):
    registry = build(Settings(classify_model=tiny["clip"]).tools)
    out = registry.call("classify", {"image": "#1", "labels": ["cat", "dog", "car"], "top_k": 2},
                        chat)
    assert not out.error, out.text
    labels = [x["label"] for x in out.data["labels"]]
    assert len(labels) == 2 and set(labels) <= {"cat", "dog", "car"}
    probs = [x["probability"] for x in out.data["labels"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    one = registry.call("classify", {"image": "#1", "labels": ["cat"]}, chat)
    assert one.error and "at least two candidate labels" in one.text


def test_owlvit_finds_named_objects_inside_the_image(tiny, chat):
    registry = build(Settings(detect_model=tiny["owlvit"]).tools)
    out = registry.call("detect", {"image": "#1", "objects": ["cat", "dog"], "threshold": 0.0},
                        chat)
    assert not out.error, out.text
    assert out.data["boxes"], "a threshold of 0 keeps every box of the random model"
    for b in out.data["boxes"]:
        x0, y0, x1, y1 = b["box"]
        assert b["label"] in {"cat", "dog"} and 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60
    assert out.handles and chat.image(out.handles[0]).image.size == (80, 60)
    unnamed = registry.call("detect", {"image": "#1"}, chat)
    assert unnamed.error and "say what to look for" in unnamed.text


def test_detr_reports_its_own_labels_filtered_by_the_request(tiny, chat):
    registry = build(Settings(detect_model=tiny["detr"]).tools)
    everything = registry.call("detect", {"image": "#1", "threshold": 0.0}, chat)
    assert not everything.error and everything.data["boxes"]
    assert {b["label"] for b in everything.data["boxes"]} <= {"cat", "face"}
    faces = registry.call("detect", {"image": "#1", "objects": ["face"], "threshold": 0.0}, chat)
    assert {b["label"] for b in faces.data["boxes"]} <= {"face"}
    dogs = registry.call("detect", {"image": "#1", "objects": ["dog"]}, chat)
    assert dogs.error and "does not know 'dog'; its labels: cat, face" in dogs.text


def test_stable_diffusion_makes_the_asked_size_and_repeats_a_seed(tiny, chat):
    registry = build(Settings(generate_model=tiny["stable_diffusion"], generate_steps=2).tools)
    args = {"prompt": "a red square", "width": 96, "height": 64, "seed": 3}
    first = registry.call("generate_image", args, chat)
    assert not first.error, first.text
    again = registry.call("generate_image", args, chat)
    other = registry.call("generate_image", {**args, "seed": 4}, chat)
    pixels = [np.asarray(chat.image(o.handles[0]).image) for o in (first, again, other)]
    assert pixels[0].shape == (64, 96, 3) and first.data["steps"] == 2
    assert np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[0], pixels[2])
    assert chat.image(first.handles[0]).name.endswith("_generate_image_0")


def test_instruct_pix2pix_edits_in_words_and_pillow_edits_remain(tiny, chat):
    registry = build(Settings(edit_model=tiny["instruct_pix2pix"]).tools)
    schema = next(s for s in registry.schemas() if s["name"] == "edit_image")["parameters"]
    assert "instruct" in schema["properties"]["operation"]["enum"]
    out = registry.call("edit_image", {"image": "#2", "operation": "instruct",
                                       "instruction": "make it blue", "steps": 2, "seed": 1}, chat)
    assert not out.error, out.text
    edited = chat.image(out.handles[0])
    assert edited.image.size == (64, 64) and edited.name.endswith("_edit_image_2")
    assert not np.array_equal(np.asarray(edited.image), np.asarray(chat.image("#2").image))
    blank = registry.call("edit_image", {"image": "#2", "operation": "instruct",
                                         "instruction": "  "}, chat)
    assert blank.error and "instruct needs instruction" in blank.text
    flipped = registry.call("edit_image", {"image": "#1", "operation": "flip",
                                           "direction": "vertical"}, chat)
    assert not flipped.error


def test_footprints_count_the_checkpoint_parameters_before_loading(tiny):
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(tiny["clip"])
    assert count_parameters(__import__("pathlib").Path(tiny["clip"])) == \
        sum(p.numel() for p in model.parameters())
    registry = build(Settings(classify_model=tiny["clip"], device="cpu").tools)
    tool = registry["classify"]
    assert tool.footprint().bytes == int(tool.parameters * 4 * 1.2) and not hasattr(tool, "model")



def _repo(root: Path, weights: dict[str, int], configs: dict[str, dict]) -> Path:
    """A directory laid out like a hub repository: dummy safetensors of `n` parameters each."""
    from safetensors.torch import save_file

    for name, n in weights.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        save_file({"weight": torch.zeros(n)}, str(root / name))
    for name, config in configs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(config))
    return root


PIPELINE_WEIGHTS = {  # a Stable Diffusion repository as the hub has it (sizes made small)
    "unet/diffusion_pytorch_model.safetensors": 100,
    "unet/diffusion_pytorch_model.fp16.safetensors": 100,  # the same weights in half precision
    "text_encoder/model.safetensors": 20,
    "vae/diffusion_pytorch_model.safetensors": 10,
    "safety_checker/model.safetensors": 1000,  # disabled: never loaded
    "v1-5-pruned-emaonly.safetensors": 5000,  # single-file checkpoints beside the components
    "sd_xl_turbo_1.0_fp16.safetensors": 7000,
}
PIPELINE_CONFIGS = {"model_index.json": {"_class_name": "StableDiffusionPipeline"},
                    "unet/config.json": {}, "text_encoder/config.json": {},
                    "vae/config.json": {}, "tokenizer/vocab.json": {}}


def test_a_pipeline_counts_only_its_component_weights(tmp_path):
    pipeline = _repo(tmp_path / "sd", PIPELINE_WEIGHTS, PIPELINE_CONFIGS)
    assert count_parameters(pipeline) == 100 + 20 + 10
    # Without model_index.json it is a transformers-style checkpoint: root weights are its own.
    plain = _repo(tmp_path / "clip", {"model.safetensors": 64, "extra/more.safetensors": 8},
                  {"config.json": {}})
    assert count_parameters(plain) == 64 + 8


def test_a_pipeline_download_fetches_only_its_component_weights(tmp_path, monkeypatch):
    """The hub is a local directory here; the fake download keeps what the real one would (the
    same filter over the same patterns) and returns one snapshot directory per repository."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    remotes = {"org/sd": _repo(tmp_path / "remote-sd", PIPELINE_WEIGHTS, PIPELINE_CONFIGS),
               "org/clip": _repo(tmp_path / "remote-clip", {"model.safetensors": 64},
                                 {"config.json": {}, "tokenizer.json": {}})}
    asked = []

    def snapshot_download(repo_id, allow_patterns=None, ignore_patterns=None, **kwargs):
        asked.append((repo_id, allow_patterns))
        remote, snapshot = remotes[repo_id], tmp_path / "snapshots" / repo_id
        files = [f.relative_to(remote).as_posix() for f in remote.rglob("*") if f.is_file()]
        for name in filter_repo_objects(files, allow_patterns=allow_patterns,
                                        ignore_patterns=ignore_patterns):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(remote / name, snapshot / name)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    sd = local_path("org/sd")
    fetched = sorted(f.relative_to(sd).as_posix() for f in sd.rglob("*.safetensors"))
    assert fetched == ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                       "vae/diffusion_pytorch_model.safetensors"]
    assert (sd / "model_index.json").is_file() and (sd / "tokenizer/vocab.json").is_file()
    assert count_parameters(sd) == 130
    clip = local_path("org/clip")
    assert sorted(f.name for f in clip.iterdir()) == ["config.json", "model.safetensors",
                                                     "tokenizer.json"]
    assert count_parameters(clip) == 64
    first = asked[0]  # the configs alone come first: they say it is a pipeline
    assert first[0] == "org/sd" and not any(p.endswith(".safetensors") for p in first[1])

def test_an_unloaded_hub_tool_lets_its_model_go(tiny, chat):
    registry = build(Settings(classify_model=tiny["clip"]).tools)
    registry.call("classify", {"image": "#1", "labels": ["a", "b"]}, chat)
    tool = registry["classify"]
    assert isinstance(tool.model, torch.nn.Module)
    registry.unload_all()
    assert not hasattr(tool, "model") and registry.budget.names() == []


def test_a_model_that_is_not_there_is_an_error_observation(tmp_path, chat):
    missing = build(Settings(caption_model=str(tmp_path / "nowhere")).tools)
    out = missing.call("caption", {"image": "#1"}, chat)
    assert out.error and "could not be fetched" in out.text
    (tmp_path / "empty").mkdir()
    empty = build(Settings(vqa_model=str(tmp_path / "empty")).tools)
    out = empty.call("vqa", {"image": "#1", "question": "what?"}, chat)
    assert out.error and "no config.json" in out.text


def test_every_schema_is_a_langchain_tool_schema():
    from langchain_core.tools import StructuredTool
    from langchain_core.utils.function_calling import convert_to_openai_tool

    tools = [*build(Settings().tools).tools.values(), build(Settings(edit_model="x").tools)["edit_image"]]
    for tool in tools:
        as_langchain = StructuredTool.from_function(func=lambda **kw: "", name=tool.name,
                                                    description=tool.description,
                                                    args_schema=tool.Args)
        spec = convert_to_openai_tool(as_langchain)["function"]
        assert spec["name"] == tool.name
        assert set(spec["parameters"]["required"]) == set(tool.Args.model_json_schema()["required"])
