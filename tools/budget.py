"""A memory budget for lazily loaded tools: load on first use, evict the least recently used.

Each tool states its footprint before it loads: parameter count and dtype on a device
(`estimate`). `MemoryBudget.use(tool)` loads the tool if needed, first unloading the least
recently used tools on the same device until the new one fits, and logs every eviction. A tool
that alone exceeds its device's budget is refused with a clear error, before anything is
unloaded.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import torch

log = logging.getLogger(__name__)

OVERHEAD = 1.2  # buffers, activations of one call and allocator slack, on top of the weights


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


class OverBudget(RuntimeError):
    pass


class MemoryBudget:
    def __init__(self, limits: dict[str, int]):
        """`limits`: bytes allowed per device, e.g. {"cpu": 4 * 2**30, "cuda": 20 * 2**30}."""
        self.limits = dict(limits)
        # Keyed by the tool object (two backends may share a tool name), least recent first.
        self.loaded: OrderedDict[int, tuple[Loadable, Footprint]] = OrderedDict()
        self.evicted: list[str] = []  # names, in the order they were unloaded

    def names(self) -> list[str]:
        """Loaded tools, least recently used first."""
        return [t.name for t, _ in self.loaded.values()]

    def used(self, device: str) -> int:
        return sum(f.bytes for _, f in self.loaded.values() if f.device == device)

    def use(self, tool: Loadable) -> None:
        """Make sure `tool` is loaded and mark it most recently used."""
        if id(tool) in self.loaded:
            self.loaded.move_to_end(id(tool))
            return
        need = tool.footprint()
        limit = self.limits.get(need.device)
        if limit is not None and need.bytes > limit:
            raise OverBudget(f"tool {tool.name!r} needs {need}, more than the whole budget "
                             f"there ({limit / 2**20:.0f} MiB)")
        while limit is not None and self.used(need.device) + need.bytes > limit:
            oldest = next(t for t, f in self.loaded.values() if f.device == need.device)
            self.unload(oldest, reason=f"to make room for {tool.name!r} ({need})")
        tool.load()
        self.loaded[id(tool)] = (tool, need)

    def unload(self, tool: Loadable, reason: str = "asked") -> None:
        _, footprint = self.loaded.pop(id(tool))
        tool.unload()
        self.evicted.append(tool.name)
        log.info("unloaded tool %r (%s): %s", tool.name, footprint, reason)
