"""`python -m assistant tools` lists the tools and their argument schemas;
`python -m assistant tool NAME --image FILE [--arg key=value ...]` runs one and prints JSON
(the observation, structured data, where its new images were saved).

Images given with --image become #1, #2, ... and fill the tool's image argument (#1) unless
--arg image=#2 says otherwise. Values of --arg are read as JSON when they parse (numbers,
lists: --arg box=[10,10,90,90]) and as text otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.config import add_arguments, add_tool_arguments, from_args
from assistant.errors import AssistantError, BadSetting


def add_parsers(sub) -> None:
    listing = sub.add_parser("tools", help="list the tools with their argument schemas")
    add_arguments(listing)
    add_tool_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print the schemas as JSON")
    one = sub.add_parser("tool", help="run one tool and print its result as JSON")
    add_arguments(one)
    add_tool_arguments(one)
    one.add_argument("name", help="tool name (see `python -m assistant tools`)")
    one.add_argument("--image", action="append", default=[],
                     help="image or PDF file (repeatable; a PDF's pages are #1, #2, ...)")
    one.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                     help="a tool argument (repeatable)")
    one.add_argument("--out", default=".", help="folder for new images (default: here)")


def parse_pairs(pairs: list[str]) -> dict:
    arguments = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadSetting(f"--arg wants KEY=VALUE, got {pair!r}")
        try:
            arguments[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key.strip()] = value
    return arguments


def _type(schema: dict) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        return "|".join(map(str, schema["enum"]))
    if schema.get("type") == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    return schema.get("type", "object")


def list_tools(args: argparse.Namespace) -> int:
    from tools.registry import build

    try:
        registry = build(from_args(args).tools)
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    schemas = registry.schemas()
    if args.json:
        print(json.dumps(schemas, indent=2))
        return 0
    for s in schemas:
        print(f"{s['name']}  [{s['backend']}]\n  {s['description']}")
        required = set(s["parameters"].get("required", []))
        for field, spec in s["parameters"]["properties"].items():
            need = ("required" if field in required else
                    f"default {json.dumps(spec['default'])}" if "default" in spec else "optional")
            print(f"    {field}: {_type(spec)} ({need}) {spec.get('description', '')}")
    return 0


def run_tool(args: argparse.Namespace) -> int:
    from assistant.conversation import Conversation
    from assistant.documents import load_attachment
    from assistant.engines import lazy_engine
    from tools.registry import build

    try:
        settings = from_args(args)
        arguments = parse_pairs(args.arg)
        conversation = Conversation()
        attached = [a for p in args.image
                    for a in load_attachment(p, Path(p).name, settings.limits)]
        images = [a.image for a in attached]  # a PDF: its pages, #1 the first
        conversation.add_user("", images, [a.name for a in attached],
                              [a.page for a in attached])
        registry = build(settings.tools, engine=lazy_engine(settings.engine))
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.name in registry.names and images and "image" in registry[args.name].image_args:
        arguments.setdefault("image", "#1")
    observation = registry.call(args.name, arguments, conversation)
    out = Path(args.out)
    saved = []
    for handle in observation.handles:
        ref = conversation.image(handle)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{ref.name}.png"
        ref.image.save(path)
        saved.append({"handle": handle, "path": str(path)})
    print(json.dumps({"tool": args.name, "error": observation.error,
                      "observation": observation.text, "data": observation.data,
                      "images": saved, "seconds": round(observation.seconds, 3)}, indent=2,
                     default=str))
    return 1 if observation.error else 0
