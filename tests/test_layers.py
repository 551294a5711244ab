"""The packages import one way: each may use its own layer and those below it, never one
above (docs/architecture.md draws the layers). Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import modules of its own layer or a lower one.
LAYERS = [
    ["assistant.errors"],
    ["assistant.config", "assistant.images", "assistant.documents", "assistant.devices",
     "assistant.pixels"],
    ["assistant.conversation", "assistant.export", "assistant.store", "assistant.fetch",
     "assistant.tinykit", "prompts"],
    ["assistant.vlm"],  # the model classes
    ["assistant.models"],  # assembly: backbones, compose, recipes, the embedded default
    ["assistant.engine"],  # runs a checkpoint it is given
    ["assistant.engines"],  # which engine answers
    ["tools"],
    ["assistant.agent"],
    ["assistant.train"],
    ["assistant.eval"],
    ["assistant.session", "assistant.chat_view", "assistant.admission", "assistant.memory_budget",
     "assistant.api_requests",
     "assistant.api_http", "assistant.api", "assistant.cli", "assistant.cli_tools",
     "assistant.examples", "assistant.web", "assistant.__main__", "assistant", "app"],
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def unit(module: str) -> str:
    """The layer entry a module belongs to: the longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def modules():
    for path in [*ROOT.glob("assistant/**/*.py"), *ROOT.glob("tools/**/*.py"),
                 *ROOT.glob("prompts/**/*.py"), ROOT / "app.py"]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        yield name, path


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # "from assistant import embedded" names a module
                yield f"{node.module}.{alias.name}", node.lineno


def ours(module: str) -> bool:
    return module.split(".")[0] in ("assistant", "tools", "prompts", "app")


def test_every_import_points_down_or_sideways():
    wrong = []
    for name, path in modules():
        here = RANK[unit(name)]
        for target, line in imports(path):
            if not ours(target):
                continue
            try:
                there = RANK[unit(target)]
            except AssertionError:  # "from assistant.x import some_function"
                continue
            if there > here:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} "
                             f"(layer {there} > {here})")
    assert not wrong, "\n".join(wrong)


def test_the_engine_knows_nothing_of_training_the_default_or_exports():
    banned = ("assistant.train", "assistant.models.embedded", "assistant.export",
              "assistant.eval", "assistant.engines")
    found = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for name, path in modules() if unit(name) == "assistant.engine"
             for target, line in imports(path) if target.startswith(banned)]
    assert not found, "\n".join(found)


def test_no_test_module_imports_another():
    found = [f"{path.name}:{line} imports {target}"
             for path in (ROOT / "tests").glob("test_*.py")
             for target, line in imports(path)
             if target.startswith("tests.test_") or target.startswith("tests.conftest")]
    assert not found, "\n".join(found)


# What a tool must not decide: whether a message asks for it (the agent's hints do that,
# assistant/agent/hints.py). A tool is a name, a description, typed inputs and a run.
POLICY = {"asked", "settles", "reads_text", "asks_work_of", "presents_only", "asks_to_draw"}


def test_tools_hold_no_routing_policy():
    wrong = [f"{p.relative_to(ROOT)}" for p in (ROOT / "tools").glob("**/asking.py")]
    for path in sorted((ROOT / "tools").glob("**/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        members = [(node, m) for node in tree.body if isinstance(node, ast.ClassDef)
                   for m in node.body]
        for owner, node in [(None, n) for n in tree.body] + members:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            where = f"{owner.name}." if owner is not None else ""
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno} {where}{n}" for n in names
                      if n in POLICY and (owner is not None or n != "asked")]
    assert not wrong, "routing policy in tools/ (it belongs in assistant/agent/hints.py):\n" + \
        "\n".join(wrong)
