"""Command line: `python -m assistant chat [--model M] [--quant 4bit] [--image a.png] "question"`.

With a question it answers once and exits. Without one it is an interactive chat: image (or PDF)
paths typed in a line are attached to that message (quoted or with escaped spaces, as in a shell),
Ctrl-C stops the current answer, /help lists the commands.
`python -m assistant tools` lists the tools; `python -m assistant tool NAME --image FILE` runs one
(see assistant/cli_tools.py). `python -m assistant tiny FAMILY DIR` builds a tiny random checkpoint (for trying things out).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TextIO

from assistant import cli_tools
from assistant.config import Settings, add_arguments, add_tool_arguments, from_args
from assistant.errors import AssistantError

# a typed word naming an existing file with one of these endings is an attachment (what it
# is, is read from its bytes: assistant/documents.py)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".pdf")
HELP = """Commands:
  /help          this text
  /clear         start a new conversation (forget messages and images)
  /undo          forget the last question and its answer
  /images        list the images in this conversation
  /bye           quit (also Ctrl-D)
Type a message; put image or PDF paths anywhere in it to attach them (refer to them later
as #1, #2; each page of a PDF is one picture).
Ctrl-C stops an answer in progress."""


TRAILING = ",.;:!?)\"'"


def split_images(line: str) -> tuple[str, list[Path]]:
    """Pull paths of existing image files out of a typed line; return the rest and the paths.
    Words are split as a shell would (quotes, escaped spaces); a line with an unbalanced quote
    (say, an apostrophe) is split on whitespace instead."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        words = line.split()
    kept: list[str] = []
    paths: list[Path] = []
    for word in words:
        path, tail = _image_path(word)
        if path is None:
            kept.append(word)
            continue
        paths.append(path)
        if tail:  # "sign.png," or "photo.jpg?": the punctuation stays in the message
            kept.append(tail)
    if not paths:
        return line.strip(), []
    return " ".join(kept), paths


def _image_path(word: str) -> tuple[Path | None, str]:
    """The existing image file a typed word names, and the punctuation glued after it."""
    for cut in range(len(word), max(len(word) - 3, 0), -1):
        head, tail = word[:cut], word[cut:]
        if tail.strip(TRAILING) or not head.lower().endswith(IMAGE_SUFFIXES):
            continue
        path = Path(head).expanduser()
        if path.is_file():
            return path, tail
    return None, ""


COMMANDS = ("/bye", "/exit", "/quit", "/clear", "/undo", "/images", "/help")


def is_command(line: str) -> bool:
    """Whether a typed line is a /command: "/help", "/undo", or a word of one slash that is
    none ("/hlep": said to be unknown). A line that begins with a path ("/home/ana/bill.png
    what's the total?", as a file dropped in a terminal types it) is a message."""
    first = line.split()[0] if line.split() else ""
    return first.startswith("/") and (first.lower() in COMMANDS or "/" not in first[1:] and
                                      "." not in first)


def missing_images(text: str) -> list[str]:
    """The words of a message (what `split_images` left) that name picture or PDF files by a
    path, with a slash, that do not exist: a typo that would otherwise be sent as text."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        words = text.split()
    return [w for w in (w.rstrip(TRAILING) for w in words)
            if "/" in w and w.lower().endswith(IMAGE_SUFFIXES)]


class Chat:
    """One terminal conversation over an engine."""

    def __init__(self, engine, settings: Settings, out: TextIO | None = None,
                 err: TextIO | None = None, verbose: bool = False, agent=None,
                 save_images: str = ""):
        from assistant.conversation import Conversation

        self.engine, self.settings = engine, settings
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.verbose = verbose
        self.agent = agent  # with an Agent, the model may call tools (steps go to stderr)
        self.save_images = save_images
        self.conversation = Conversation()

    def ask(self, text: str, image_paths: list[Path]) -> bool:
        """Answer one message, streaming; False if it failed (the conversation is unchanged)."""
        from assistant.documents import load_attachment

        limits = self.settings.limits
        try:
            attached = [a for p in image_paths for a in load_attachment(p, p.name, limits)]
        except AssistantError as e:
            print(f"error: {e}", file=self.err)
            return False
        turn = self.conversation.add_user(text, [a.image for a in attached],
                                          [a.name for a in attached],
                                          [a.page for a in attached])
        if turn.images:
            print(f"[attached {', '.join(f'{h} {a.name}' for h, a in zip(turn.images, attached, strict=True))}]",
                  file=self.err)
        for note in dict.fromkeys(a.note for a in attached if a.note):
            print(f"[{note}]", file=self.err)
        if self.agent is not None:
            return self.ask_agent()
        try:
            reply = self.engine.stream(self.conversation)
        except AssistantError as e:
            self.conversation.pop_last_exchange()
            print(f"error: {e}", file=self.err)
            return False
        if reply.fitted.dropped_anything:
            print(f"[{reply.fitted.describe()}]", file=self.err)
        stream = reply.stream
        try:
            try:
                for delta in stream:
                    self.out.write(delta)
                    self.out.flush()
            except KeyboardInterrupt:
                stream.cancel()
                stream.wait()
                print("\n[stopped]", file=self.err)
        except AssistantError as e:
            self.conversation.pop_last_exchange()
            print(f"\nerror: {e}", file=self.err)
            return False
        self.out.write("\n")
        self.conversation.add_assistant(stream.text)
        if self.verbose:
            u = stream.usage
            print(f"[{u.prompt_tokens} prompt tokens ({u.image_tokens} image), "
                  f"{u.completion_tokens} generated in {u.seconds:.2f}s, "
                  f"{u.tokens_per_second:.1f} tok/s, {u.finish_reason}]", file=self.err)
        return True

    def ask_agent(self) -> bool:
        """The agent answers: tool steps on stderr as they happen, the answer on stdout."""
        from assistant.agent import Delta, Final, Note, Step
        from assistant.agent.trace import results

        final, events = None, []
        try:
            for event in self.agent.run(self.conversation):
                events.append(event)
                if isinstance(event, Delta):
                    self.out.write(event.text)
                    self.out.flush()
                elif isinstance(event, Step):
                    self._show_step(event)
                elif isinstance(event, Note):
                    print(f"[step {event.step}: {event.kind}: {event.text}]", file=self.err)
                elif isinstance(event, Final):
                    final = event
        except KeyboardInterrupt:
            print("\n[stopped]", file=self.err)
        except AssistantError as e:
            self.conversation.pop_last_exchange()
            print(f"\nerror: {e}", file=self.err)
            return False
        if final is not None and not final.finished and not final.stopped:
            self.out.write(final.text)
        self.out.write("\n")
        self.conversation.add_assistant(final.text if final else "", results(events))
        return True

    def _show_step(self, step) -> None:
        from assistant.agent.trace import call_text

        if step.status == "running":
            print(f"[step {step.step}] {call_text(step.tool, step.arguments)}", file=self.err,
                  flush=True)
            return
        first = step.observation.splitlines()[0] if step.observation else ""
        print(f"[step {step.step}] {step.status} in {step.seconds:.1f}s: {first}", file=self.err)
        for handle in step.images:
            ref = self.conversation.image(handle)
            where = ""
            if self.save_images:
                path = Path(self.save_images) / f"{ref.name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                ref.image.save(path)
                where = f" saved to {path}"
            print(f"[new image {handle} {ref.name}{where}]", file=self.err)

    def repl(self, lines: TextIO) -> None:
        print(f"Chatting with {self.engine.name}. /help for commands, /bye to quit.", file=self.err)
        while True:
            self.out.write(">>> ")
            self.out.flush()
            try:
                line = lines.readline()
            except KeyboardInterrupt:
                self.out.write("\n")
                continue
            if not line:
                self.out.write("\n")
                return
            line = line.strip()
            if not line:
                continue
            if is_command(line):
                if self.command(line):
                    return
                continue
            text, paths = split_images(line)
            if (missing := missing_images(text)):
                print(f"no such file: {', '.join(missing)} (nothing was sent; check the "
                      "path)", file=self.err)
                continue
            self.ask(text, paths)

    def command(self, line: str) -> bool:
        """Run a /command; True means quit."""
        from assistant.conversation import Conversation

        name = line.split()[0].lower()
        if name in ("/bye", "/exit", "/quit"):
            return True
        if name == "/clear":
            self.conversation = Conversation()
            print("[new conversation]", file=self.err)
        elif name == "/undo":
            removed = self.conversation.pop_last_exchange()
            print(f"[removed {len(removed)} message(s)]", file=self.err)
        elif name == "/images":
            for ref in self.conversation.images.values():
                print(f"{ref.handle} {ref.name} {ref.image.width}x{ref.image.height}", file=self.out)
        elif name == "/help":
            print(HELP, file=self.out)
        else:
            print(f"unknown command {name}; /help lists them", file=self.err)
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="chat in the terminal, or answer one question")
    add_arguments(chat)
    chat.add_argument("--image", action="append", default=[],
                      help="image or PDF file (repeatable; a PDF's pages become pictures)")
    chat.add_argument("-v", "--verbose", action="store_true", help="print token counts and speed")
    chat.add_argument("--agent", action="store_true",
                      help="let the model call tools (caption, OCR, detect, ...); steps on stderr")
    chat.add_argument("--save-images", default="", metavar="DIR",
                      help="with --agent: save images the tools make into DIR")
    add_tool_arguments(chat)
    chat.add_argument("question", nargs="?", help="answer this and exit (else interactive)")
    cli_tools.add_parsers(sub)
    tiny = sub.add_parser("tiny", help="build a tiny random checkpoint (for trying the pipeline)")
    tiny.add_argument("family", choices=("llava", "llava_next", "blip2", "instructblip"))
    tiny.add_argument("out_dir")
    return parser


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "tools":
        return cli_tools.list_tools(args)
    if args.command == "tool":
        return cli_tools.run_tool(args)
    if args.command == "tiny":
        from assistant.tinykit.checkpoints import build

        print(build(args.family, args.out_dir))
        return 0
    try:
        settings = from_args(args)
        from assistant.engines import open_engine

        print("loading model...", file=sys.stderr, flush=True)
        engine = open_engine(settings.engine)
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    agent = None
    if args.agent:
        from assistant.agent import for_settings
        from tools.registry import build

        agent = for_settings(engine, build(settings.tools, engine=lambda: engine),
                             settings.agent, settings.generation)
    chat = Chat(engine, settings, verbose=args.verbose, agent=agent, save_images=args.save_images)
    if args.question is not None or args.image:
        text, typed = split_images(args.question or "")
        return 0 if chat.ask(text, [Path(p) for p in args.image] + typed) else 1
    chat.repl(stdin or sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
