"""A memory budget for lazily loaded tools: load on first use, evict the least recently used.

Each tool states its footprint before it loads: parameter count and dtype on a device
(`estimate`), plus what a call needs beyond the weights. `MemoryBudget.use(tool)` loads the
tool if needed, first unloading the least recently used tools on the same device until the new
one fits, and logs every eviction. Tools used together (a composite tool's parts) are fitted
together and never evict each other; tools without weights and tools still running are never
evicted. A tool that alone exceeds its device's budget is refused with a clear error, before
anything is unloaded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import torch

from assistant.errors import AssistantError

log = logging.getLogger(__name__)

OVERHEAD = 1.2  # buffers, activations of one call and allocator slack, on top of the weights
SETTING = {"cpu": "tool_memory_cpu_mb"}  # the setting that sets a device's budget (else gpu)


@dataclass(frozen=True)
class Footprint:
    device: str  # "cpu", "cuda", "mps"
    bytes: int

    def __str__(self) -> str:
        return f"{self.bytes / 2**20:.0f} MiB on {self.device}"


def estimate(parameters: int, dtype: torch.dtype | str, device: str = "cpu") -> Footprint:
    """Weights at `dtype` (4-bit counts half a byte a parameter) plus a fixed overhead."""
    if dtype in ("4bit", "nf4"):
        per = 0.5
    elif dtype in ("8bit", "int8"):
        per = 1.0
    else:
        per = torch.empty((), dtype=dtype).element_size()
    return Footprint(device, int(parameters * per * OVERHEAD))


class Loadable(Protocol):
    name: str

    def footprint(self) -> Footprint: ...

    def load(self) -> None: ...

    def unload(self) -> None: ...


class OverBudget(AssistantError):
    """The tools asked for need more memory than their budget allows."""


class MemoryBudget:
    def __init__(self, limits: dict[str, int]):
        """`limits`: bytes allowed per device, e.g. {"cpu": 4 * 2**30, "cuda": 20 * 2**30}."""
        self.limits = dict(limits)
        # Keyed by the tool object (two backends may share a tool name), least recent first.
        self.loaded: OrderedDict[int, tuple[Loadable, Footprint]] = OrderedDict()
        self.evicted: list[str] = []  # names of tools unloaded to make room, in order
        self._lock = threading.RLock()

    def names(self) -> list[str]:
        """Loaded tools, least recently used first."""
        return [t.name for t, _ in self.loaded.values()]

    def used(self, device: str) -> int:
        return sum(f.bytes for _, f in self.loaded.values() if f.device == device)

    def use(self, *tools: Loadable) -> None:
        """Make sure every one of `tools` is loaded, and mark them most recently used."""
        with self._lock:
            for tool in tools:
                if id(tool) in self.loaded:
                    self.loaded.move_to_end(id(tool))
            group = [self.loaded[id(t)] if id(t) in self.loaded else (t, t.footprint())
                     for t in tools]
            needs = [(t, f) for t, f in group if id(t) not in self.loaded]
            for device in {f.device for _, f in needs}:
                self._make_room(device, [(t, f) for t, f in needs if f.device == device],
                                [(t, f) for t, f in group if f.device == device])
            for tool, need in needs:
                tool.load()
                self.loaded[id(tool)] = (tool, need)

    def _make_room(self, device: str, needs: list, group: list) -> None:
        """Unload least recently used tools on `device` until `needs` fit beside what is
        loaded; the `group` asked for together (loaded or not) stays."""
        limit = self.limits.get(device)
        if limit is None:
            return
        names = " + ".join(repr(t.name) for t, _ in group)
        together = Footprint(device, sum(f.bytes for _, f in group))
        if together.bytes > limit:
            setting = SETTING.get(device, "tool_memory_gpu_mb")
            raise OverBudget(f"tool {names} needs {together}, more than the whole tool budget "
                             f"there ({limit / 2**20:.0f} MiB; setting {setting})")
        total = sum(f.bytes for _, f in needs)
        keep = {id(t) for t, _ in group}
        while self.used(device) + total > limit:
            oldest = next((t for t, f in self.loaded.values() if f.device == device and f.bytes
                           and not getattr(t, "busy", False) and id(t) not in keep), None)
            if oldest is None:
                raise OverBudget(f"tool {names} does not fit next to the tools still running "
                                 f"on {device}; try again when they finish")
            self.evicted.append(oldest.name)
            self.unload(oldest, reason=f"to make room for {names} ({together})")

    def unload(self, tool: Loadable, reason: str = "asked") -> None:
        with self._lock:
            _, footprint = self.loaded.pop(id(tool))
            tool.unload()
            log.info("unloaded tool %r (%s): %s", tool.name, footprint, reason)
