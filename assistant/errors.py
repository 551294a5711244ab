"""Errors a user can act on. `str(error)` is the whole message: what happened and what to do.

Every error meant for a user derives from `AssistantError`, wherever it is defined (the web
layer's `NotServed`, a tool's `ToolError`, the store's `NoSuchChat`). Entry points (CLI, app,
API, training, evaluation) catch `AssistantError` and nothing wider: anything else that escapes
the library is a bug and is reported as one.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error whose message is meant for the user."""


class BadSetting(AssistantError, ValueError):
    """A setting, flag or environment variable with a value it cannot take; the message names
    it and what it may be."""


class OutOfMemory(AssistantError):
    """The device ran out of memory loading a model or generating."""

    def __init__(self, during: str, model: str, device: str):
        self.during, self.model, self.device = during, model, device
        super().__init__(
            f"Out of {device} memory {during} {model!r}. Try: --quant 4bit (needs a CUDA GPU), "
            "a smaller model, fewer or smaller images, a lower --max-new-tokens, "
            "or --device cpu (slow, but uses system RAM)."
        )


class MissingDependency(AssistantError):
    """An optional package is not installed."""

    def __init__(self, package: str, needed_for: str, extra: str = "", install: str = ""):
        self.package, self.extra = package, extra
        install = install or f"pip install 'multimodal-assistant[{extra}]'"
        super().__init__(
            f"{needed_for} needs the package {package!r}, which is not installed. "
            f"Install it with: {install}"
        )


class UnsupportedCheckpoint(AssistantError):
    """The checkpoint is not an image-text-to-text model transformers can load."""

    def __init__(self, model: str, model_type: str | None, architectures: list[str] | None):
        self.model_type, self.architectures = model_type, architectures
        arch = ", ".join(architectures or []) or "none listed"
        super().__init__(
            f"{model!r} is not a vision-language checkpoint this assistant can load: its config "
            f"says model_type={model_type!r}, architectures: {arch}. Use a checkpoint that "
            "transformers' AutoModelForImageTextToText supports (LLaVA, LLaVA-NeXT, "
            "LLaVA-OneVision, BLIP-2, InstructBLIP, ...) or one built by `python -m assistant.train`."
        )


class ModelNotAvailable(AssistantError):
    """Neither a local directory nor reachable on the hub."""

    def __init__(self, model: str, reason: str):
        self.model = model
        super().__init__(
            f"Model {model!r} is not available: {reason}. It is not a local directory, and it "
            "could not be loaded from the Hugging Face hub or its local cache. On a machine with "
            f"internet run `hf download {model} --local-dir DIR`, copy DIR here and pass "
            "--model DIR; or leave --model unset to use the embedded default."
        )


class ContextOverflow(AssistantError):
    """The current turn cannot fit in the context budget even with all history dropped."""

    def __init__(self, needed: int, budget: int, context: int, reserved: int, detail: str):
        self.needed, self.budget = needed, budget
        super().__init__(
            f"This message needs {needed} tokens ({detail}) but the budget is {budget} "
            f"(context {context} minus {reserved} reserved for the answer). Send fewer or "
            "smaller images, a shorter message, lower max_new_tokens, or raise --context-tokens."
        )


class BadImage(AssistantError):
    """An upload that is not a usable image."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"Cannot use {name!r} as an image: {reason}.")


class BadDocument(BadImage):
    """An upload that is a PDF this assistant cannot turn into pictures (protected, damaged,
    empty, too big). A kind of BadImage: whatever refuses a bad picture refuses it too."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        AssistantError.__init__(self, f"Cannot use {name!r} as a PDF: {reason}.")


class OverLimit(AssistantError):
    """A message longer, or with more pictures, than the settings allow."""

    def __init__(self, what: str, count: int, limit: int, setting: str):
        self.what, self.count, self.limit, self.setting = what, count, limit, setting
        super().__init__(f"Too much in one go: {what} is {count:,}; the limit is {limit:,} "
                         f"(the setting {setting}). Nothing was added to the chat.")


class UnknownImage(AssistantError):
    """A reference to an image handle that does not exist in the conversation."""

    def __init__(self, handle: str, known: list[str]):
        self.handle = handle
        have = ", ".join(known) or "none yet"
        super().__init__(f"There is no image {handle} in this conversation (images: {have}).")


class ImageRequired(AssistantError):
    """The model cannot answer without an image (BLIP-2-style processors)."""

    def __init__(self, model: str):
        super().__init__(f"{model!r} answers questions about images only: attach an image first.")


class BadData(AssistantError):
    """A training or evaluation record that cannot be used, with where it is."""

    def __init__(self, file: str, line: int | None, reason: str, skippable: bool = True):
        self.file, self.line, self.reason = file, line, reason
        where = f"{file}, line {line}" if line else file
        hint = " (pass --skip-bad to skip such records and count them)" if skippable else ""
        super().__init__(f"{where}: {reason}{hint}")
