"""The tools' memory budget: lazy loading, least-recently-used eviction (logged), results
unchanged after a reload, and a clear refusal for a tool bigger than the whole budget."""

from __future__ import annotations

import logging

import pytest
import torch

from tools.budget import Footprint, MemoryBudget, OverBudget, estimate


class LinearTool:
    """A real module as a tool: built on load, dropped on unload, seeded so a reload gives
    the same weights."""

    def __init__(self, name: str, width: int, seed: int):
        self.name, self.width, self.seed = name, width, seed
        self.module: torch.nn.Linear | None = None
        self.loads = 0

    def footprint(self) -> Footprint:
        return estimate(self.width * self.width + self.width, torch.float32)

    def load(self) -> None:
        torch.manual_seed(self.seed)
        self.module = torch.nn.Linear(self.width, self.width)
        self.loads += 1

    def unload(self) -> None:
        self.module = None

    def __call__(self, budget: MemoryBudget, x: torch.Tensor) -> torch.Tensor:
        budget.use(self)
        with torch.no_grad():
            return self.module(x)


def test_estimate_counts_bytes_per_parameter():
    assert estimate(1000, torch.float32).bytes == 4800
    assert estimate(1000, torch.float16, "cuda") == Footprint("cuda", 2400)
    assert estimate(1000, "4bit").bytes == 600
    assert "MiB on cpu" in str(estimate(2**20, torch.float32))


def test_third_tool_evicts_the_least_recently_used(caplog):
    a, b, c = (LinearTool(n, 64, seed) for n, seed in (("a", 1), ("b", 2), ("c", 3)))
    one = a.footprint().bytes
    budget = MemoryBudget({"cpu": 2 * one + one // 2})  # room for two
    x = torch.randn(2, 64)
    first = a(budget, x)
    b(budget, x)
    a(budget, x)  # a is now the most recently used: b goes first
    with caplog.at_level(logging.INFO, logger="tools.budget"):
        c(budget, x)
    assert budget.names() == ["a", "c"] and budget.evicted == ["b"]
    assert b.module is None and "unloaded tool 'b'" in caplog.text and "'c'" in caplog.text
    assert budget.used("cpu") <= budget.limits["cpu"]
    b(budget, x)  # back again: a goes, and a's results stay the same after its reload
    assert budget.evicted == ["b", "a"]
    assert torch.equal(a(budget, x), first) and a.loads == 2


def test_devices_have_separate_budgets():
    gpu = LinearTool("gpu", 64, 0)
    gpu.footprint = lambda: Footprint("cuda", 100)
    cpu = LinearTool("cpu", 64, 0)
    budget = MemoryBudget({"cpu": cpu.footprint().bytes, "cuda": 100})
    budget.use(gpu)
    budget.use(cpu)
    assert set(budget.names()) == {"gpu", "cpu"} and budget.evicted == []


def test_a_tool_bigger_than_the_budget_is_refused_and_nothing_is_lost():
    small, huge = LinearTool("small", 8, 0), LinearTool("huge", 512, 0)
    budget = MemoryBudget({"cpu": huge.footprint().bytes // 2})
    budget.use(small)
    with pytest.raises(OverBudget, match="'huge' needs .* more than the whole tool budget .*tool_memory_cpu_mb"):
        budget.use(huge)
    assert budget.names() == ["small"] and small.module is not None and huge.loads == 0


def test_parts_used_together_never_evict_each_other():
    a, b, c = (LinearTool(n, 64, i) for i, n in enumerate("abc"))
    budget = MemoryBudget({"cpu": a.footprint().bytes * 2 + 1})
    budget.use(c)
    budget.use(a, b)  # c goes, and neither a nor b is unloaded for the other
    assert budget.names() == ["a", "b"] and budget.evicted == ["c"]
    with pytest.raises(OverBudget, match="'a' \\+ 'b' \\+ 'c' needs"):
        budget.use(a, b, c)
    assert budget.names() == ["a", "b"] and a.module is not None


def test_tools_without_weights_or_still_running_are_not_evicted():
    free, busy, new = LinearTool("free", 64, 0), LinearTool("busy", 64, 1), LinearTool("new", 64, 2)
    free.footprint = lambda: Footprint("cpu", 0)
    budget = MemoryBudget({"cpu": busy.footprint().bytes})
    budget.use(free)
    budget.use(busy)
    busy.busy = True
    with pytest.raises(OverBudget, match="still running"):
        budget.use(new)
    busy.busy = False
    budget.use(new)
    assert budget.names() == ["free", "new"] and budget.evicted == ["busy"]
