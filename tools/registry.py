"""The tools of one assistant: built from the settings (which backend answers each), sharing one
memory budget, called by name.

    registry = tools.registry.build(settings)
    observation = registry.call("ocr", {"image": "#1"}, conversation)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from assistant.config import ToolSettings
from assistant.conversation import Conversation
from assistant.errors import AssistantError, BadSetting
from tools import caption, classify, detect, edit, generate, vqa
from tools.base import Observation, Tool, call
from tools.budget import MemoryBudget
from tools.calculate import Calculate
from tools.classify import ImageNetClassifier
from tools.detect import HaarDetector
from tools.ocr import Ocr

MIB = 2**20


class Registry:
    def __init__(self, tools: list[Tool], budget: MemoryBudget, timeout: float = 120.0):
        self.tools = {t.name: t for t in tools}
        self.budget, self.timeout = budget, timeout

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def only(self, names) -> Registry:
        """The same tools (and budget), fewer of them: a chat that switched some off."""
        unknown = set(names) - set(self.tools)
        if unknown:
            raise BadSetting(f"no tools named {', '.join(sorted(unknown))}; the tools are "
                             f"{', '.join(self.tools)}")
        return Registry([t for n, t in self.tools.items() if n in set(names)], self.budget,
                        self.timeout)

    def __getitem__(self, name: str) -> Tool:
        return self.tools[name]

    def call(self, name: str, arguments: dict, conversation: Conversation,
             timeout: float | None = None, cancel=None) -> Observation:
        """Run one tool; an unknown name, like any bad call, is an error observation. `cancel`
        (a threading.Event) set: stop waiting for it."""
        tool = self.tools.get(name)
        if tool is None:
            return Observation(f"Error: there is no tool named {name!r}; the tools are "
                               f"{', '.join(self.tools)}.", error=True)
        return call(tool, arguments, conversation, self.budget, timeout or self.timeout, cancel)

    def schemas(self) -> list[dict]:
        """Each tool's name, description, backend and JSON schema of its arguments."""
        return [{"name": t.name, "description": t.description, "backend": t.backend,
                 "parameters": t.Args.model_json_schema()} for t in self.tools.values()]

    def unload_all(self) -> None:
        for tool, _ in list(self.budget.loaded.values()):
            self.budget.unload(tool, reason="closing")


def no_engine():
    raise AssistantError("This tool answers with the chat model, and none is loaded here.")


def build(settings: ToolSettings, engine: Callable[[], object] | None = None) -> Registry:
    """The tools the settings name. `engine` returns the chat model, for the tools it backs
    (caption and vqa with backend "main"); without one, those tools say there is none
    (`assistant.engines.lazy_engine` opens it on first use)."""
    engine = engine or no_engine
    budget = MemoryBudget({"cpu": settings.tool_memory_cpu_mb * MIB,
                           "cuda": settings.tool_memory_gpu_mb * MIB,
                           "mps": settings.tool_memory_gpu_mb * MIB})
    classifier = classify.build(settings)
    detector = detect.build(settings)
    ocr = Ocr(threads=torch.get_num_threads())  # as many as torch uses
    parts = {  # the describe caption reuses the offline tools, or its own when they are hub ones
        "classify": classifier if isinstance(classifier, ImageNetClassifier) else ImageNetClassifier(),
        "detect": detector if isinstance(detector, HaarDetector) else HaarDetector(),
        "ocr": ocr,
    }
    instruct = edit.InstructPix2Pix(settings.edit_model, settings) if settings.edit_model else None
    tools = [
        caption.build(settings, engine, parts, budget),
        vqa.build(settings, engine),
        ocr,
        detector,
        classifier,
        generate.build(settings),
        edit.EditImage(instruct, budget),
        Calculate(),
    ]
    return Registry(tools, budget, settings.tool_timeout)
