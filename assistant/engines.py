"""Which engine answers, and the one a server answers with now.

    engine = open_engine(settings)   # settings.remote, else settings.model, else the default
    current = Current(engine)        # current.load(other) swaps it for every later request
    get = lazy_engine(settings)      # opened on the first get(), for tools run on their own

The engine package runs a checkpoint it is given; choosing one (a remote server, a checkpoint,
or the embedded default assembled on first use) is decided here, above it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from assistant.config import EngineSettings
from assistant.devices import free_memory
from assistant.engine import Engine
from assistant.engine.interface import ChatEngine
from assistant.engine.loader import load
from assistant.errors import AssistantError
from assistant.models import embedded


def open_engine(settings: EngineSettings, source: str | None = None) -> ChatEngine:
    """`source` (a directory or hub id) if given; else the remote server settings.remote,
    else settings.model, else the embedded default."""
    if source is None and settings.remote:
        from assistant.engine.remote import RemoteEngine

        return RemoteEngine.connect(settings)
    if source is None and not settings.model:
        return Engine(load(settings, str(embedded.default_dir(settings))), settings,
                      label=embedded.LABEL, kind="embedded")
    return Engine.load(settings, source or settings.model)


def lazy_engine(settings: EngineSettings) -> Callable[[], ChatEngine]:
    """The chat model, opened on first use only (for tools run without a chat around them)."""
    lock, box = threading.Lock(), []

    def get() -> ChatEngine:
        with lock:
            if not box:
                box.append(open_engine(settings))
            return box[0]

    return get


class Current:
    """The engine a server answers with now; `load` puts another in its place (for every
    chat and API request after it), and a load that fails leaves the current one."""

    def __init__(self, engine: ChatEngine):
        self.engine = engine
        self._loading = threading.Lock()

    def load(self, settings: EngineSettings) -> ChatEngine:
        """Open the engine the settings name (`open_engine`). Raises `LoadBusy` while another
        load runs, or what loading raised."""
        if not self._loading.acquire(blocking=False):
            raise LoadBusy()
        try:
            engine = open_engine(settings)
            old, self.engine = self.engine, engine
            device = old.device
            del old
            if device in ("cpu", "cuda", "mps"):
                free_memory(device)
            return engine
        finally:
            self._loading.release()


class LoadBusy(AssistantError):
    def __init__(self):
        super().__init__("Another model is loading; wait for it to finish.")
