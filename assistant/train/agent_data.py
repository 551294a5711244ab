"""Training chats for the agent: whole conversations, seen turn by turn exactly as the agent
shows them to the model (assistant/agent/view.py), with real tool results.

    agent:N   about N training samples (one per turn of simulated chats)

A simulated chat has one to five messages. People bring pictures mid-chat (one, sometimes
two at once), ask about the newest one or an earlier one ("#2", "the first picture"), edit a
picture a tool just made ("now make it black and white"), compare two pictures, make small
talk and ask general questions in between, or ask about an answer just given ("is that am
or pm?", answered from it). Each message becomes one sample: the view the
model reads at that point (the compact agent prompt, the last exchanges as text, the message
with its pictures) and what it should write: a tool call, and after the real tool's
observation an answer that uses it (a time read off a departure board, a total off a
receipt); or, after a tool fails, an answer that says so plainly; or a direct answer (a
greeting, a general question, the colour or number of shapes it sees).

Requests come from assistant/train/wording.py (many phrasings per request, typos and all);
no sentence of the evaluation sets is ever used (they are read only to be left out).
Pictures come from assistant/train/pictures.py. Everything follows from `seed`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from assistant.train import chitchat, follow_up, pictures, wording
from assistant.train.data import Loaded, Sample
from tools.edit import REGIONS

TARGETS = {"faces": ["face"], "people": ["person"], "persons": ["person"],
           "human faces": ["face"], "cat faces": ["cat face"], "person": ["person"],
           "humans": ["person"], "pedestrians": ["person"], "heads": ["face"]}
UNSUPPORTED_TARGETS = ["cars", "dogs", "trees", "bottles", "birds", "chairs", "cups", "clouds"]
UNDRAWABLE = ["a cat", "a dog", "a house", "a car", "a tree", "a sunset over the sea",
              "my grandmother", "a mountain", "a horse", "a city at night", "a portrait",
              "a banana", "a dragon", "a forest"]
# How people name pictures by what they show (pictures.PHOTOS, sign kinds), and the picture
# an edit started from.
PHOTO_NAMES = {"astronaut": ("the astronaut", "the portrait", "the photo of the woman"),
               "chelsea": ("the cat photo", "the one with the cat"),
               "cat": ("the cat photo", "the one with the cat"),
               "coffee": ("the coffee one", "the coffee photo", "the cup"),
               "rocket": ("the rocket photo", "the rocket"),
               "camera": ("the camera photo", "the photographer"),
               "hubble_deep_field": ("the space picture", "the galaxies one"),
               "immunohistochemistry": ("the microscope one", "the cells picture")}
SIGN_NAMES = {"train": ("the timetable", "the train sign"), "bus": ("the bus sign",),
              "flight": ("the boarding pass", "the flight board"),
              "receipt": ("the receipt", "the bill"), "price": ("the price tag",),
              "hours": ("the opening hours", "the shop sign"), "room": ("the door sign",),
              "wifi": ("the wifi card",), "phone": ("the card with the number",),
              "serial": ("the sticker", "the label"), "parking": ("the parking sign",
                                                                  "the notice")}
# How people name the parts of a picture tools/edit.py's crop knows.
REGION_WORDS = {"left half": ["left half", "left side", "left part"],
                "right half": ["right half", "right side", "right part"],
                "top half": ["top half", "top", "upper half", "top part"],
                "bottom half": ["bottom half", "bottom", "lower half", "bottom part"],
                "top left corner": ["top left corner", "top left", "upper left corner"],
                "top right corner": ["top right corner", "top right", "upper right corner"],
                "bottom left corner": ["bottom left corner", "bottom left", "lower left"],
                "bottom right corner": ["bottom right corner", "bottom right", "lower right"],
                "center": ["center", "centre", "middle part"], "middle": ["middle"]}
ORIGINAL = ["the original", "the original one", "the one before the edit", "the unedited one"]
DONE = ["Done: {h}.", "Here it is: {h}.", "Here you go: {h}.", "Done, the new picture is {h}."]
ADMIT = ["Sorry, I could not do that: {r}", "I couldn't do that: {r}",
         "That did not work: {r}", "Sorry, that failed: {r}"]
# Turn kinds and how often a chat's message is each (given the pictures it has).
# Edits are also the next message after a picture was made (EDIT_MADE), so their own weight
# is lower than reading's.
KINDS = {"ocr": 1.5, "classify": 1.0, "caption": 1.0, "detect": 1.1, "edit": 0.9,
         "generate": 1.0, "vision": 1.2, "compare": 0.5, "chat": 1.8, "general": 1.3,
         "fail_detect": 0.35, "fail_generate": 0.35, "bring": 0.3}
# A message that only brings pictures ("look at this"): asked nothing yet, nothing is run.
BRING = ["look at this", "check this out", "here it is", "i have a picture for you",
         "here's a photo", "got this one today", "this is what i mean", "see this",
         "here you go", "sending you a pic", "look what i found", "here's the picture"]
BRING_TWO = ["here are two pictures", "two pics for you", "look at these", "check these out",
             "i have two photos", "here are both"]
# After a tool made a picture, how often the next message edits it; after any tool turn, how
# often it only thanks or says goodbye ("perfect thx"): a model that learnt that a picture
# just made is always edited next calls a tool for "thanks".
EDIT_MADE, THANKS = 0.35, 0.2
# After a tool read a picture, how often the next message brings another one and asks the
# same of it in a word or two ("and this one?"): the same tool, on the new picture.
AND_THIS = 0.2
AND_THIS_WORDS = ["and this one?", "this one too", "same for this one", "what about this one",
                  "and this one pls", "now this one", "ok and this", "same again with this",
                  "do this one too", "and here?", "how about this one", "this one as well?",
                  "and what about this", "same question for this one", "and this pic?"]
# After a reading, how often the next message asks about the value just read ("is that in the
# evening?", "what does each of us pay?"); after any tool turn, how often it asks to hear the
# answer again. Both are answered from the last answer, without a tool.
FOLLOW_UP, AGAIN = 0.6, 0.03
TOOL_TAGS = {"ocr", "classify", "caption", "detect", "fail_detect", "edit", "generate",
             "fail_generate"}
FIRST_ONLY = 0.4  # tool turns trained up to the call only (shorter: more of them per hour)
READ_AGAIN = ("ocr", "classify", "caption")  # tools "and this one?" asks again
NEEDS = {"ocr": "sign", "classify": "photo", "caption": "photo", "detect": "photo",
         "fail_detect": "photo", "vision": "shapes", "edit": "any"}


@dataclass
class Pic:
    kind: str  # sign | photo | scene | easy | made
    key: str  # feature key
    load: Callable[[], Image.Image] = field(repr=False)
    sign: pictures.Sign | None = None
    scene: pictures.ShapeScene | None = None
    qa: list[tuple[str, str]] = field(default_factory=list)  # true (question, answer) pairs
    describe: str = ""  # "a red circle" (shape pictures)
    names: list[str] = field(default_factory=list)  # "the cat picture", "the grey one"
    traits: tuple[frozenset, frozenset] = (frozenset(), frozenset())  # colours, shape kinds
    lettered: bool = False  # a drawing with text in it: read like a sign


def _norm(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").split())


# Read as files, not imported: evaluation sits beside training, neither above the other.
EVAL_SETS = Path(__file__).resolve().parents[1] / "eval" / "data"


def left_out() -> set[str]:
    """Every request of the evaluation sets (routing and scenarios, dev and held out),
    normalized: training never uses one."""
    out = set()
    for path in sorted(EVAL_SETS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            out.add(_norm(case.get("text", "")))
            out |= {_norm(t.get("user", "")) for t in case.get("turns", [])}
    return out - {""}


def call_text(name: str, arguments: dict) -> str:
    from assistant.agent import protocol

    return protocol.write(protocol.Call(name, arguments))


def _observation(tool: str, step: int, observation) -> str:
    from assistant.agent.loop import observation_text

    return observation_text("compact", tool, step, observation.text, observation.error)


def _thumbnail(image: Image.Image) -> Callable[[], Image.Image]:
    small = image.copy()
    small.thumbnail((256, 256))
    return lambda: small


class Pools:
    """Pictures shared by many chats, with their tool results worked out once."""

    def __init__(self, rng: random.Random, registry, seed: int):
        from assistant.train.data import easy_vqa

        self.rng, self.registry, self.seed = rng, registry, seed
        self.signs = [pictures.random_sign(rng) for _ in range(120)]
        self.photos = [(name, seed * 7919 + i) for i, name in enumerate(
            [rng.choice(pictures.PHOTOS) for _ in range(60)])]
        easy: dict[str, dict] = {}
        for s in easy_vqa("train").samples:
            entry = easy.setdefault(s.image_key, {"load": s.load, "qa": []})
            entry["qa"].append((s.turns[0][1], s.turns[1][1]))
            if s.kind in ("shape", "color"):
                entry[s.kind] = s.turns[1][1]
        self.easy = [(k, v) for k, v in easy.items() if "shape" in v and "color" in v]
        self.cache: dict[tuple, tuple[str, bool, dict]] = {}

    def sign(self) -> Pic:
        i = self.rng.randrange(len(self.signs))
        sign = self.signs[i]
        return Pic("sign", f"agent/sign/{self.seed}/{i}", sign.draw, sign=sign,
                   names=list(SIGN_NAMES.get(sign.kind, ("the sign",))))

    def photo(self, faces: bool = False) -> Pic:
        choices = [(n, s) for n, s in self.photos if n in pictures.FACES] if faces else \
            self.photos
        name, seed = self.rng.choice(choices)
        return Pic("photo", f"agent/photo/{name}/{seed}", pictures.photo(name, seed),
                   names=list(PHOTO_NAMES.get(name, ())))

    def shapes(self) -> Pic:
        if self.rng.random() < 0.35:
            key, entry = self.rng.choice(self.easy)
            return Pic("easy", key, entry["load"], qa=entry["qa"],
                       describe=f"a {entry['color']} {entry['shape']}",
                       names=[f"the {entry['color']} one", f"the {entry['shape']}"],
                       traits=(frozenset([entry["color"]]), frozenset([entry["shape"]])))
        scene = pictures.shape_scene(self.rng)
        return Pic("scene", f"agent/scene/{self.seed}/{self.rng.randrange(2**40)}", scene.draw,
                   scene=scene, qa=pictures.shape_questions(scene, self.rng),
                   describe=scene.describe(), names=[f"the one with {scene.describe()}"],
                   traits=(frozenset(scene.colours()), frozenset(scene.kinds())))

    def any(self) -> Pic:
        return self.rng.choice([self.sign, self.photo, self.shapes, self.shapes])()


class Chat:
    """One simulated chat: a real Conversation, the pictures in it, and its samples."""

    def __init__(self, pools: Pools, rng: random.Random, number: int, avoid: set[str]):
        from assistant.conversation import Conversation

        self.pools, self.rng, self.number, self.avoid = pools, rng, number, avoid
        self.conv = Conversation()
        self.pics: dict[str, Pic] = {}
        self.samples: list[Sample] = []
        self.intent = "read"  # what the last tool turn asked (an ocr turn: which fact)

    # -- what a message refers to ----------------------------------------------------------
    def _of(self, kind: str) -> list[str]:
        return [h for h, p in self.pics.items()
                if kind == "any" or p.kind == kind or (kind == "shapes" and p.kind in
                                                        ("scene", "easy"))
                or (kind == "sign" and p.lettered)]

    def _reference(self, handle: str) -> str:
        """How a message names an earlier picture."""
        handles = list(self.conv.images)
        index = handles.index(handle)
        options = [handle, handle, f"image {handle[1:]}", f"picture {handle[1:]}"]
        if index < 5:
            ordinal = ["first", "second", "third", "fourth", "fifth"][index]
            options += [f"the {ordinal} picture", f"the {ordinal} image", f"the {ordinal} one"]
        if index == len(handles) - 1:
            options += ["the last picture", "the latest image", "the new one"]
        # by what it shows or where it came from, when that tells it from the others
        others = [n for h, p in self.pics.items() if h != handle for n in p.names]
        options += [n for n in self.pics[handle].names if n not in others] * 2
        return self.rng.choice(options)

    def _mention(self, text: str, handle: str) -> str:
        ref = self._reference(handle)
        return self.rng.choice([f"{ref}: {text}", f"{text} ({ref})", f"{text} - {ref}",
                                f"for {ref}, {text}", f"{text} in {ref}"])

    def _target(self, kind: str) -> tuple[list[Pic], str, bool] | None:
        """(pictures to bring, handle targeted, named explicitly): a new picture of `kind`
        (most often), or one the chat has."""
        have = self._of(kind)
        if have and self.rng.random() < 0.35:
            handle = self.rng.choice(have)
            latest = handle == list(self.conv.images)[-1]
            return [], handle, not latest or self.rng.random() < 0.25
        pool = {"sign": self.pools.sign, "photo": self.pools.photo,
                "shapes": self.pools.shapes, "any": self.pools.any}[kind]
        pic = pool()
        return [pic], f"#{self.conv.next_number}", False

    # -- a turn --------------------------------------------------------------------------
    def _request(self, intent: str, handle: str | None, named: bool, **slots) -> str:
        for _ in range(30):
            text = wording.ask(intent, self.rng, **slots)
            if named and handle:
                text = self._mention(text, handle)
            if _norm(text) not in self.avoid:
                return text
        raise ValueError(f"no request for {intent} outside the evaluation sets")

    def turn(self, text: str, brought: list[Pic], tag: str,
             act: Callable[[], list[tuple[str, str]]], first_only: bool = False) -> None:
        """Add the user's message (bringing `brought`), record the sample the model learns
        from, and let `act` write the assistant's side (calls, observations, answer). With
        `first_only` the sample ends at the first call (the chat goes on as a whole): the
        choice of tool is what is hard to learn, reading the answer off a result is not."""
        from assistant.agent import loop, view

        images = [p.load() for p in brought]
        user = self.conv.add_user(text, images)
        for handle, pic in zip(user.images, brought, strict=True):
            self.pics[handle] = pic
        shown = view.turns(self.conv)
        system = loop.system_prompt(loop.offered(self.pools.registry, self.conv), self.conv,
                                    "compact")
        outputs = act()
        turns = [(t.role, t.text) for t in shown] + (outputs[:1] if first_only else outputs)
        keys = [(self.pics[h].key, self.pics[h].load) for h in shown[-1].images]
        first_key, first_load = keys[0] if keys else ("", lambda: None)
        self.samples.append(Sample(first_key, turns, first_load, kind="agent", tag=tag,
                                   system=system, extra=keys[1:], image_turn=len(shown) - 1,
                                   train_from=len(shown), handles=tuple(shown[-1].images)))
        self.conv.add_assistant(outputs[-1][1])

    def call(self, tool: str, arguments: dict):
        """Run a tool on the chat for real (results of pool pictures worked out once)."""
        pic = self.pics.get(arguments.get("image", ""))
        cacheable = tool in ("ocr", "classify", "caption", "detect") and pic is not None and \
            pic.kind != "made"
        rest = {k: v for k, v in arguments.items() if k != "image"}
        key = (tool, pic.key if pic else "", json.dumps(rest, sort_keys=True))
        if cacheable and key in self.pools.cache:
            text, error, data = self.pools.cache[key]
            from tools.base import Observation

            return Observation(text.replace("{H}", arguments["image"]), error=error,
                               data=data)
        observation = self.pools.registry.call(tool, arguments, self.conv)
        if cacheable and not observation.handles:  # a result that made a picture runs again
            self.pools.cache[key] = (observation.text.replace(arguments["image"], "{H}"),
                                     observation.error, observation.data)
        for handle in observation.handles:
            self.pics[handle] = Pic("made", f"agent/made/{self.pools.seed}/{self.number}/"
                                    f"{handle}", _thumbnail(self.conv.image(handle).image),
                                    names=_made_names(tool, arguments),
                                    lettered="with the text" in arguments.get("prompt", ""))
            if pic is not None and tool == "edit_image":
                pic.names += [n for n in ORIGINAL if n not in pic.names]
                if arguments.get("operation") == "grayscale":
                    pic.names += ["the color version", "the one in colour"]
        return observation


def _made_names(tool: str, arguments: dict) -> list[str]:
    if tool == "generate_image":
        return ["the drawing", "the one you drew", "the generated one"]
    if tool == "detect":
        return ["the one with the boxes", "the marked one"]
    names = ["the edited one", "the new version"]
    operation = arguments.get("operation")
    if operation == "grayscale":
        names += ["the black and white one", "the gray version", "the b&w one"]
    elif operation in ("rotate", "flip"):
        names += [f"the {'rotated' if operation == 'rotate' else 'flipped'} one"]
    elif operation in ("crop", "resize", "blur"):
        names += [f"the {dict(crop='cropped', resize='resized', blur='blurred')[operation]} one"]
    return names


# a request for the exact kind ("what breed", "what kind of cat"): the classifier's label, not
# its group ("tabby cat", not "cat")
EXACT = re.compile(r"\b(?:kind|breed|type|sort|species|variety|make|model)\b", re.I)


def _answer(tool: str, observation, intent: str, rng: random.Random, asked: str = "") -> str:
    """What the assistant says after a tool's observation (`asked`: the request)."""
    from assistant.agent.loop import reason_of
    from tools.report import article, report

    if observation.error:
        return rng.choice(ADMIT).format(r=reason_of(observation.text))
    data, new = observation.data, (observation.handles or [""])[0]
    if tool == "ocr":
        lines = [x["text"] for x in data.get("lines", [])]
        return (lines and pictures.fact(intent, " ".join(lines))) or report(tool, observation)
    if tool == "classify":
        exact = EXACT.search(asked) or not data.get("groups")
        best = (data["labels"] if exact else data["groups"])[0]["label"]
        a = article(best)
        return rng.choice([f"It looks like {a} {best}.", f"That's {a} {best}, most likely.",
                           f"Most likely {a} {best}."])
    if tool == "detect" and not data.get("boxes"):
        from tools.detect import plural

        what = " or ".join(plural(o) for o in data.get("objects", [])) or "objects"
        return rng.choice([f"I found no {what}.", f"I don't see any {what}.",
                           f"No, there are no {what} in it."])
    if tool in ("detect", "caption"):
        return report(tool, observation)
    return rng.choice(DONE).format(h=new)


def generate(n: int, seed: int = 0, progress: bool = True) -> Loaded:
    """About `n` samples from simulated chats (see the module's docstring)."""
    from assistant.config import Settings
    from tools.registry import build

    rng = random.Random(seed)
    registry = build(Settings(tool_memory_cpu_mb=2048).tools, engine=lambda: None)
    pools = Pools(rng, registry, seed)
    avoid = left_out()
    samples: list[Sample] = []
    bar = tqdm(total=n, desc="Agent chats (real tools)", unit="turn", disable=not progress)
    number = 0
    while len(samples) < n:
        chat = Chat(pools, rng, number, avoid)
        for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 5])):
            _one_turn(chat, rng)
        samples += chat.samples
        bar.update(len(chat.samples))
        number += 1
    bar.close()
    registry.unload_all()
    return Loaded(samples)


def _one_turn(chat: Chat, rng: random.Random) -> None:
    made = [h for h, p in chat.pics.items() if p.kind == "made"]
    latest_made = bool(made) and made[-1] == list(chat.conv.images)[-1]
    after_tool = bool(chat.samples) and chat.samples[-1].tag in TOOL_TAGS
    roll = rng.random()
    if latest_made and roll < EDIT_MADE:
        return _edit(chat, rng, made[-1], brought=[], named=rng.random() < 0.2)
    kinds = list(KINDS)
    kind = rng.choices(kinds, [KINDS[k] for k in kinds])[0]
    if after_tool and roll >= 1 - THANKS:
        kind = "thanks"
    elif after_tool and roll >= 1 - THANKS - AGAIN:
        kind = "again"
    elif after_tool and chat.samples[-1].tag == "ocr" and roll < FOLLOW_UP:
        kind = "follow_up"
    elif after_tool and chat.samples[-1].tag in READ_AGAIN and roll < FOLLOW_UP + AND_THIS:
        return _and_this(chat, rng, chat.samples[-1].tag)
    if kind in ("follow_up", "again"):
        last = chat.conv.turns[-1].text
        pair = (follow_up.follow_up(last, rng) if kind == "follow_up" else
                follow_up.again(last, rng))
        if pair is not None:
            return _direct(chat, rng, *pair, tag=kind)
        kind = "chat"
    if kind == "compare":
        return _compare(chat, rng)
    if kind == "bring":
        return _bring(chat, rng)
    if kind in ("chat", "general", "thanks"):
        text, answer = {"chat": chitchat.small_talk, "general": chitchat.general,
                        "thanks": chitchat.thanks}[kind](rng)
        return _direct(chat, rng, text, answer, tag="chat" if kind == "thanks" else kind)
    if kind in ("generate", "fail_generate"):
        return _generate(chat, rng, kind == "fail_generate")
    brought, handle, named = chat._target(NEEDS[kind])
    if kind == "edit":
        return _edit(chat, rng, handle, brought, named)
    if kind == "vision":
        pic = brought[0] if brought else chat.pics[handle]
        question, answer = rng.choice(pic.qa)
        text = wording.typed(wording.wrap(question, rng), rng)
        if named:
            text = chat._mention(text, handle)
        if _norm(text) in chat.avoid:
            return None
        return chat.turn(text, brought, "vision", lambda: [("assistant", answer)])
    if kind == "ocr":
        pic = brought[0] if brought else chat.pics[handle]
        intents = ["read"] + (pictures.SIGN_QUESTIONS[pic.sign.kind] * 2 if pic.sign else [])
        intent = rng.choice(intents)
        text = chat._request(intent, handle, named)
        return _tool_turn(chat, rng, text, brought, "ocr", "ocr", {"image": handle}, intent)
    if kind in ("detect", "fail_detect"):
        if kind == "detect":
            target = rng.choice(list(TARGETS))
            objects = TARGETS[target]
        else:
            target = rng.choice(UNSUPPORTED_TARGETS)
            objects = [target.rstrip("s")]
        one = target.rstrip("s") if target != "people" else "person"
        if kind == "detect" and rng.random() < 0.25:  # "is anyone in this picture?"
            objects = ["person"]
            text = chat._request("detect_people", handle, named)
        else:
            text = chat._request("detect", handle, named, target=target, one=one)
        return _tool_turn(chat, rng, text, brought, kind, "detect",
                          {"image": handle, "objects": objects}, "detect")
    text = chat._request(kind, handle, named)
    return _tool_turn(chat, rng, text, brought, kind, kind, {"image": handle}, kind)


def _direct(chat: Chat, rng: random.Random, text: str, answer: str, tag: str) -> None:
    """A message answered in words, without a tool."""
    text = wording.typed(text, rng)
    if _norm(text) in chat.avoid:
        return None
    return chat.turn(text, [], tag, lambda: [("assistant", answer)])


def _tool_turn(chat: Chat, rng: random.Random, text: str, brought: list[Pic], tag: str,
               tool: str, arguments: dict, intent: str) -> None:
    chat.intent = intent

    def act() -> list[tuple[str, str]]:
        observation = chat.call(tool, arguments)
        out = [("assistant", call_text(tool, arguments)),
               ("user", _observation(tool, 1, observation))]
        return out + [("assistant", _answer(tool, observation, intent, rng, text))]

    chat.turn(text, brought, tag, act, first_only=rng.random() < FIRST_ONLY)


def _generate(chat: Chat, rng: random.Random, fail: bool) -> None:
    if fail:
        scene = rng.choice(UNDRAWABLE)
    else:
        scene = pictures.shape_scene(rng).describe()
        if rng.random() < 0.4:
            scene += f" on a {rng.choice(pictures.BACKGROUNDS)} background"
        if rng.random() < 0.2:  # then and again read back (Pic.lettered)
            scene += f" with the text '{rng.choice(pictures.WORDS)}'"
    text = chat._request("generate", None, False, scene=scene)
    _tool_turn(chat, rng, text, [], "fail_generate" if fail else "generate", "generate_image",
               {"prompt": scene}, "generate")


def _edit(chat: Chat, rng: random.Random, handle: str, brought: list[Pic],
          named: bool) -> None:
    pic = brought[0] if brought else chat.pics[handle]
    w, h = pic.load().size if brought else chat.conv.image(handle).image.size
    operation = rng.choice(["grayscale", "grayscale", "rotate", "rotate_named", "flip_h",
                            "flip_v", "blur", "resize", "crop", "crop"])
    args: dict = {"image": handle}
    slots: dict = {}
    if operation == "grayscale":
        args["operation"] = "grayscale"
    elif operation == "rotate":
        slots["degrees"] = rng.choice([90, 180, 270, 45, 30, 15, 60, 120])
        args.update(operation="rotate", degrees=slots["degrees"])
    elif operation in ("flip_h", "flip_v"):
        args.update(operation="flip",
                    direction="horizontal" if operation == "flip_h" else "vertical")
    elif operation == "blur":
        args["operation"] = "blur"
    elif operation == "resize":
        slots.update(w=rng.choice([64, 128, 200, 256, 300, 512]),
                     h=rng.choice([64, 128, 200, 256, 384, 512]))
        args.update(operation="resize", width=slots["w"], height=slots["h"])
    elif operation == "crop" and rng.random() < 0.25:  # a box the message gives in pixels
        x0, y0 = rng.randrange(0, w // 2), rng.randrange(0, h // 2)
        x1, y1 = rng.randrange(x0 + w // 8, w + 1), rng.randrange(y0 + h // 8, h + 1)
        slots.update(x0=x0, y0=y0, x1=x1, y1=y1)
        operation = "crop_box"
        args.update(operation="crop", box=[x0, y0, x1, y1])
    elif operation == "crop":  # a part named in words: the call names it, the tool measures
        region = rng.choice(list(REGIONS))
        slots["region"] = rng.choice(REGION_WORDS.get(region, [region]))
        args.update(operation="crop", region=region)
    text = chat._request(operation, handle, named, **slots)
    if operation == "rotate_named":
        clockwise = "right" in text.lower() or (
            "clockwise" in text.lower() and "counter" not in text.lower())
        args.update(operation="rotate", degrees=-90 if clockwise else 90)
    _tool_turn(chat, rng, text, brought, "edit", "edit_image", args, "edit")


def _and_this(chat: Chat, rng: random.Random, tag: str) -> None:
    """A new picture of the kind just read, asked about in a few words: the same tool again."""
    intent = chat.intent if tag == "ocr" else tag
    for _ in range(10):  # a sign that answers the question asked of the last one
        pic = getattr(chat.pools, NEEDS[tag])()
        if tag != "ocr" or intent in ["read", *pictures.SIGN_QUESTIONS[pic.sign.kind]]:
            break
    else:
        intent = "read"
    text = wording.typed(rng.choice(AND_THIS_WORDS), rng)
    if _norm(text) in chat.avoid:
        return None
    _tool_turn(chat, rng, text, [pic], tag, tag, {"image": f"#{chat.conv.next_number}"},
               intent)


def _bring(chat: Chat, rng: random.Random) -> None:
    """Pictures brought with no question: acknowledged, and asked what to do."""
    brought = [chat.pools.any() for _ in range(rng.choice([1, 1, 1, 2]))]
    first = chat.conv.next_number
    handles = [f"#{first + i}" for i in range(len(brought))]
    text = wording.typed(rng.choice(BRING if len(brought) == 1 else BRING_TWO), rng)
    if _norm(text) in chat.avoid:
        return None
    got, it = " and ".join(handles), "it" if len(handles) == 1 else "them"
    answer = rng.choice([f"Got it: {got}. What would you like to know?",
                         f"I have {got}. What should I do with {it}?",
                         f"Thanks, that's {got}. Ask me anything about {it}, or ask for an "
                         f"edit."])
    chat.turn(text, brought, "bring", lambda: [("assistant", answer)])


# "which one is the red one?" (of two pictures): by a colour, by a shape
WHICH = {"colour": ["which one is {t}?", "which of the two is the {t} one",
                    "which pic has the {t} shape", "which picture has something {t} in it",
                    "the {t} one is which?", "which of these is {t}",
                    "where is the {t} shape, first or second?", "which one has {t} in it"],
         "shape": ["which one has the {t}?", "which pic shows a {t}", "where's the {t}",
                   "which of the two has a {t} in it", "the {t} is in which one?",
                   "which picture is the {t} one", "find the {t}: first or second?"]}


def _which(a: Pic, b: Pic, rng: random.Random) -> tuple[str, str] | None:
    """A colour or a shape that picture `a` has and `b` has not, with what it is ("red",
    "colour"; "circle", "shape"), or None when `a` has none of its own."""
    options = [(c, "colour") for c in a.traits[0] - b.traits[0]] + \
        [(k, "shape") for k in a.traits[1] - b.traits[1]]
    return rng.choice(sorted(options)) if options else None


def _compare(chat: Chat, rng: random.Random) -> None:
    have = chat._of("shapes")
    if len(have) >= 2 and rng.random() < 0.5:
        a, b = rng.sample(have, 2)
        brought = []
    else:
        brought = [chat.pools.shapes(), chat.pools.shapes()]
        a, b = f"#{chat.conv.next_number}", f"#{chat.conv.next_number + 1}"
    pics = {a: (brought[0] if brought else chat.pics[a]),
            b: (brought[1] if brought else chat.pics[b])}
    which = _which(pics[a], pics[b], rng) if rng.random() < 0.5 else None
    if which is not None:  # "which one is the red one?": the one that has it
        trait, what = which
        text = rng.choice(WHICH[what]).format(t=trait)
        answer = rng.choice([f"{a}: it shows {pics[a].describe}.",
                             f"The {'first' if a < b else 'second'} one, {a}: "
                             f"{pics[a].describe}."])
    else:
        text = wording.ask("compare", rng, a=a, b=b)
        answer = f"{a} shows {pics[a].describe}; {b} shows {pics[b].describe}."
    if not brought and a not in text:
        text = f"{text} ({a} and {b})"
    text = wording.typed(text, rng) if which is not None else text
    if _norm(text) in chat.avoid:
        return None
    chat.turn(text, brought, "compare", lambda: [("assistant", answer)])
