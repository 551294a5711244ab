"""The agent loop: each turn the model either answers (streamed) or calls a tool; the tool's
observation goes back fenced as data; repeat until an answer, the step limit or the deadline.
A call that cannot be read gets one retry with the reason; after that, and at any limit, the
user gets an honest answer saying what was done.

Rules that hold whatever the model and the language (by structure):
- the model reads a short view of the chat (assistant/agent/view.py), not all of it;
- tools that need a picture are not offered in a chat that has none, and an image argument
  can only name a picture of the chat;
- a message naming a picture that does not exist is answered with the pictures there are;
- the same reading of the same picture is read again from the chat, not run again;
- an answer never writes a call or a tool's name, never names a picture that does not
  exist, names the picture a call made, and gives no number or code that neither the user
  nor a tool wrote (assistant/agent/checks.py): the model is asked once more, then the loop
  says itself what failed or what the tool returned;
- no call text reaches the user (assistant/agent/chat_model.py holds it back);
- the result of a sum the answer writes is computed (assistant/agent/arithmetic.py).

Hints by English words, for a small model only (assistant/agent/hints.py, `--agent-rules`):
they narrow what is offered and never refuse a capable model's valid call:
- when the message names or brings pictures, a call names only those (and this answer's);
- a tool that makes pictures is offered only for the work the message has words for
  (assistant/agent/words.py): no crop for "which leaves first?", only grayscale for "make
  it bw"; in a follow-up on pictures already read, a reading tool only reads again what it
  read, or is not offered unless the message has words for its work ("and when is
  boarding?": the sign's reading); whether or how many people a picture shows is the
  detector's to say, not the model's guess; the calculator is offered only when there are
  numbers to work on;
- a message that brings pictures and asks nothing of them is answered with what can be done
  with them; one in a script the English default cannot read, with what it can do;
- an answer after a failed call says so, and after a tool's result shares its words;
- on the compact prompt: a message about a page of text (a PDF page, or a picture the
  reading finds four lines in) is a question for the reading, and the reading's answer is
  the reply (docs/documents.md).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

import prompts
from assistant.agent import arithmetic, checks, grounding, handles, hints, protocol, view
from assistant.agent.chat_model import EngineChatModel
from assistant.agent.run_state import RunState, reply_kind
from assistant.agent.trace import Delta, Event, Final, Note, Step, call_text
from assistant.config import AgentSettings, GenerationDefaults
from assistant.conversation import Conversation, Result
from assistant.errors import BadSetting, UnknownImage
from tools.base import Observation, Source
from tools.report import report


def _arguments(schema: dict) -> list[dict]:
    required = set(schema.get("required", []))
    out = []
    for name, spec in schema["properties"].items():
        kind = spec.get("type") or next((s.get("type") for s in spec.get("anyOf", [])
                                         if s.get("type") != "null"), "value")
        if "enum" in spec:
            kind = "|".join(map(str, spec["enum"]))
        out.append({"name": name, "type": kind, "required": name in required})
    return out


PROMPTS = {"full": "agent_system", "compact": "agent_system_compact"}
OBSERVATIONS = {"full": "agent_observation", "compact": "agent_observation_compact"}


def observation_text(style: str, tool: str, step: int, text: str, error: bool) -> str:
    """A tool's result as the model reads it: fenced as data."""
    return prompts.render(OBSERVATIONS[style], tool=tool, step=step, text=protocol.fence(text),
                          error=error)


def offered(registry, conversation: Conversation, ran: list[Result] = (),
            rules: hints.Hints | None = None):
    """The tools the model may call now: those that need a picture only when there is one,
    and of the others those the hints keep (`rules`: the calculator only where there are
    numbers to work on, for a small model)."""
    kept = set((rules or hints.Hints()).offered(registry, conversation, ran))
    return registry.only([n for n, t in registry.tools.items()
                          if (conversation.images or not t.image_args) and n in kept])


# a message that asks something (a hint in English, for the small model only)
QUESTION = re.compile(r"\?\s*$|^\W*(?:how|what|what's|whats|which|when|where|who|whose|why|is|"
                      r"are|was|were|do|does|did|can|could|will|would|should|has|have|any)\b|"
                      r"\bhow (?:much|many|long)\b|\bwhat(?:'s| is| time| day)\b", re.I)


def system_prompt(registry, conversation: Conversation, style: str = "full") -> str:
    """The tools and images, in the full prompt or the compact one small models train on."""
    tools = [{"name": s["name"], "description": s["description"],
              "arguments": _arguments(s["parameters"])} for s in registry.schemas()]
    images = [{"handle": h, "name": r.name, "width": r.image.width, "height": r.image.height}
              for h, r in conversation.images.items()]
    return prompts.render(PROMPTS[style], tools=tools, images=images)


def _limited(schema: dict, names: tuple[str, ...], values: list[str]) -> dict:
    """The tool's argument schema with its arguments `names` limited to `values` (the
    handles an image argument may name, the edits a message asks for)."""
    properties = dict(schema.get("properties", {}))
    for name in names:
        if name in properties:
            spec = {k: v for k, v in properties[name].items()
                    if k not in ("type", "anyOf", "$ref")}
            properties[name] = {**spec, "type": "string", "enum": list(values)}
    return {**schema, "properties": properties}


def langchain_tools(registry, allowed: list[str] | None = None,
                    wanted: dict[str, list[str]] | None = None,
                    images: dict[str, list[str]] | None = None) -> list[StructuredTool]:
    """The registry's tools as langchain tools (their schemas are what the model is offered;
    the loop runs the calls itself, through the registry). `allowed`: the handles an image
    argument may name (None: any text, as the tools' own schemas say); `wanted`: what the
    message asks of a tool that makes pictures (`asked`: [] leaves the tool out); `images`:
    the only handles some tools may read (`rereads`: [] leaves the tool out)."""
    out = []
    wanted, images = wanted or {}, images or {}
    for t in registry.tools.values():
        only = images.get(t.name)
        if only is not None and allowed is not None:
            only = [h for h in only if h in allowed]
        if wanted.get(t.name) == [] or only == []:
            continue
        schema = t.Args.model_json_schema()
        if (only or allowed) is not None and t.image_args:
            schema = _limited(schema, t.image_args, only or allowed)
        if t.name in wanted and t.choice:
            schema = _limited(schema, (t.choice,), wanted[t.name])
        out.append(StructuredTool.from_function(func=lambda **kw: "", name=t.name,
                                                description=t.description, args_schema=schema))
    return out


def history(turns) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for turn in turns:
        if turn.role == "user":
            out.append(HumanMessage(turn.text, additional_kwargs={"images": list(turn.images)}))
        else:
            out.append(AIMessage(turn.text))
    return out


def for_settings(engine, registry, agent: AgentSettings, generation: GenerationDefaults) -> Agent:
    """An agent as its settings say; prompt "auto" is what the model was trained with (the
    compact prompt for the embedded default and checkpoints of this project's recipe trained
    on agent chats, which record it; the full prompt for any other model), and rules "auto"
    the word-based hints for those small models only (assistant/agent/hints.py)."""
    style = agent.agent_prompt
    if style == "auto":
        style = engine.agent_prompt or "full"
    return Agent(engine, registry, max_steps=agent.agent_max_steps, deadline=agent.agent_deadline,
                 max_new_tokens=generation.max_new_tokens, prompt=style,
                 guided=agent.agent_guided, temperature=generation.temperature,
                 rules=agent.agent_rules)


def reason_of(observation_text: str) -> str:
    """A tool's error without its "Error from TOOL:" label."""
    first = observation_text.strip()
    return re.sub(r"^Error(?: from [\w-]+)?:\s*", "", first)


class Agent:
    def __init__(self, engine, registry, max_steps: int = 5, deadline: float = 300.0,
                 max_new_tokens: int = 256, prompt: str = "full", guided: bool = True,
                 temperature: float | None = None, rules: str = "hints"):
        if prompt not in PROMPTS:
            raise BadSetting(f"agent prompt must be one of {', '.join(PROMPTS)}; got {prompt!r}")
        if rules not in hints.RULES:
            raise BadSetting(f"agent rules must be one of {', '.join(hints.RULES)}; "
                             f"got {rules!r}")
        self.engine, self.registry, self.prompt = engine, registry, prompt
        self.hints = hints.for_rules(rules, engine)  # word-based steering, or none
        self.max_steps, self.deadline, self.max_new_tokens = max_steps, deadline, max_new_tokens
        self.guided = guided  # tool calls decoded to fit their schemas (assistant/agent/grammar.py)
        self.temperature = temperature  # None: the engine's setting

    def _model(self, conversation: Conversation, tools, allowed: list[str],
               max_new_tokens: int | None = None, cancel: threading.Event | None = None,
               ran: list[Result] = (), answer_only: bool = False, advice: str = "",
               first: bool = False):
        """The chat model with `tools` bound to it, their image arguments limited to `allowed`
        (the pictures `_allowed` gives); with none when it must `answer_only`. On the `first`
        step, a tool that the hints say settles what the message asks (the detector, for
        "are there people in it?") is the only one offered, and the reply must call it."""
        model = EngineChatModel(engine=self.engine, conversation=conversation,
                                max_new_tokens=max_new_tokens or self.max_new_tokens,
                                guided=self.guided, cancel=cancel,
                                temperature=self.temperature)
        if answer_only:
            return model.bind_tools([])
        offer = langchain_tools(tools, allowed, *self._limits(tools, conversation, ran, advice))
        message = view.request(conversation)
        settling = [t for t in offer if first and self.hints.settles(t.name, message)]
        if first and not settling and (page := self._document(conversation, tools, ran)):
            reader, handle = page
            settling = langchain_tools(tools.only([reader]), [handle])
        if settling:
            return model.bind_tools(settling, must_call=True)
        return model.bind_tools(offer)

    def _document(self, conversation: Conversation, tools, ran: list[Result]):
        """(the reading tool, the picture) when the message is about a page of text and asks
        for no new picture: a PDF page, or a picture in which the reading finds four lines
        or more (read once; the reading's call uses it again). A question about a page is a
        question for its reading, whatever its words. For a small model trained on the
        compact prompt only, with the hints on: a capable model chooses for itself."""
        if self.prompt != "compact" or not conversation.images:
            return None
        reader = self.hints.reader(tools)
        if reader is None:
            return None
        wanted = self.hints.asked(tools, conversation, ran)
        message = view.request(conversation)
        if any(t.makes and wanted.get(n) for n, t in tools.tools.items()) and \
                not QUESTION.search(message):
            return None  # "crop the total" asks for a picture; "how much for a cut?" does not
        about = self.hints.about_page(reader.name, message, tools)
        for handle in reversed(view.shown(conversation)):
            ref = conversation.images[handle]
            page = getattr(ref, "page", None)
            if page is not None and about:
                return reader.name, handle
            try:
                self.registry.budget.use(reader)
                lines = reader.lines(Source(handle, ref.image,
                                            text_layer=page.lines if page else ()))
            except Exception:  # noqa: BLE001  (no reading: the model chooses, as without one)
                return None
            # "is there a joining fee ...?" has words for the detector's work, but its words
            # stand on the page: a question for the reading. "what breed is it?" has none.
            if (page is not None or len(lines) >= 4) and (about or reader.mentions(message,
                                                                                   lines)):
                return reader.name, handle
        return None

    def _limits(self, tools, conversation: Conversation, ran: list[Result], advice: str):
        """What the hints say the message asks of each tool (`asked`) and what the reading
        tools may read in a follow-up (`rereads`), the latter not when it would leave no tool
        on offer."""
        wanted = self.hints.asked(tools, conversation, ran, advice)
        images = self.hints.rereads(tools, conversation, advice)
        left = [n for n in tools.names if wanted.get(n) != [] and images.get(n) != []]
        return wanted, images if left else {}

    def _allowed(self, conversation: Conversation, made: list[str]) -> list[str]:
        """The pictures a call may name: with the hints on, those the message names or brings
        and those this answer made; when it names and brings none, and without the hints,
        any picture of the chat."""
        explicit = list(view.focus(conversation).explicit) if self.hints.on else []
        return list(dict.fromkeys(explicit + made)) if explicit else list(conversation.images)

    def _refused(self, name: str, arguments: dict, allowed: list[str],
                 conversation: Conversation, ran: list[Result],
                 advice: str = "") -> Observation | None:
        """An error for a call naming a picture of the chat that the message is not about, or
        making a picture the message does not ask for (a model not guided by the grammar may
        write one); None when the call may run."""
        tool = self.registry.tools.get(name)
        wanted, images = self._limits(self.registry, conversation, ran, advice)
        wanted, only = wanted.get(name), images.get(name)
        chosen = arguments.get(tool.choice) if tool is not None and tool.choice else None
        if wanted == [] or (wanted and tool.choice and chosen not in wanted):
            what = (f"the message asks for {' or '.join(wanted)}, not {chosen}" if wanted
                    else "the message asks for none of its work")
            if chosen == "draw_boxes" and \
                    "draw_boxes" in (hints.wants(tool, view.request(conversation)) or ()):
                what = "there are no boxes to draw yet; find them first (detect)"
            return Observation(f"Error from {name}: {what}.", error=True)
        for key in getattr(tool, "image_args", ()):
            value = arguments.get(key)
            if isinstance(value, str) and value in conversation.images and value not in allowed:
                return Observation(f"Error from {name}: {value} is not the picture this "
                                   f"message is about; use {', '.join(allowed)}.", error=True)
            if only is not None and value not in only:
                return Observation(f"Error from {name}: the message asks about what was read "
                                   f"already ({', '.join(only) or 'nothing by this tool'}); "
                                   "answer from that.", error=True)
        return None

    def _earlier(self, name: str, arguments: dict, conversation: Conversation,
                 ran: list[Result]) -> Result | None:
        """The result of the same reading (tool and arguments) this answer (`ran`) or an
        earlier one of the chat made: the same call on the same picture reads the same, so a
        follow-up ("which gate again?") is answered from it. A tool that makes pictures always
        runs."""
        tool = self.registry.tools.get(name)
        if tool is None or tool.makes:
            return None
        return conversation.earlier(name, arguments, ran)

    def _read_before(self, name: str, arguments: dict, conversation: Conversation,
                     ran: list[Result]) -> Result | None:
        """The chat's earlier reading of the same page by the same tool, when this call only
        asks it another question (OCR's `question`): the tool answers from what it kept, so
        the page is not read again, and the call is shown as a reuse."""
        tool = self.registry.tools.get(name)
        if tool is None or tool.makes or not getattr(tool, "whole_document", False) or \
                not arguments.get("question"):
            return None
        same = {k: v for k, v in arguments.items() if k not in ("question", "show")}
        return next((r for r in reversed([*conversation.results, *ran]) if r.tool == name and
                     {k: v for k, v in r.arguments.items() if k not in ("question", "show")}
                     == same and not r.data.get("error")), None)

    def _start(self, conversation: Conversation, ran: list[Result] = ()):
        """The tools offered for this answer, its system prompt (the same for every step, so
        that each step's prompt begins as the last one did, unless a tool made the chat's first
        picture or read numbers to work on, and more tools are offered) and the messages."""
        tools = offered(self.registry, conversation, ran, self.hints)
        system = SystemMessage(system_prompt(tools, conversation, self.prompt))
        return tools, [system, *history(view.turns(conversation))]

    def first_action(self, conversation: Conversation) -> tuple[str, str]:
        """What the model does first with the last user turn: a tool's name, "direct" (it
        answers) or "malformed"; and its raw reply. (For the routing evaluation.) The loop's
        own answers (`_said_first`) are direct."""
        if (said := self._said_first(conversation)) is not None:
            return "direct", [e for e in said if isinstance(e, Final)][0].text
        tools, messages = self._start(conversation)
        reply = self._model(conversation, tools, self._allowed(conversation, []),
                            max_new_tokens=64, first=True).invoke(messages)
        kind = reply_kind(reply)
        if kind == "call":
            return reply.tool_calls[0]["name"], json.dumps(reply.tool_calls[0]["args"])
        return ("direct" if kind == "answer" else kind), reply.content

    def run(self, conversation: Conversation,
            cancel: threading.Event | None = None) -> Iterator[Event]:
        """Answer the conversation's last (user) turn. Tools' new images are added to
        `conversation`; the caller adds the final answer as the assistant's turn. Setting
        `cancel` stops the answer being written (within one token) or the tool being waited
        for, and ends the run with what was written so far. Each step writes a reply and
        hands it to the handler of its kind (`_on_answer`, `_on_call`, `_on_malformed`),
        which returns True once the run has ended."""
        if (said := self._said_first(conversation)) is not None:
            yield from said
            return
        tools, messages = self._start(conversation)
        state = RunState(conversation, tools, messages, cancel)
        handlers = {"answer": self._on_answer, "call": self._on_call,
                    "malformed": self._on_malformed}
        for step in range(1, self.max_steps + 1):
            if state.left(self.deadline) <= 0:
                yield Note(step, "deadline", f"stopped after {self.deadline:g} s")
                yield self._give_up(f"it took longer than {self.deadline:g} seconds",
                                    state.done, step)
                return
            self._refresh(state)
            allowed = self._allowed(conversation, state.made)
            reply, written, shown = yield from self._write(state, step, allowed)
            if state.stopped():
                yield Note(step, "stopped", "stopped by the user")
                yield Final(arithmetic.fix(protocol.strip_tags(written).strip()), step,
                            finished=False, stopped=True)
                return
            ended = yield from handlers[reply_kind(reply)](state, step, reply, written, shown,
                                                           allowed)
            if ended:
                return
        yield Note(self.max_steps, "limit", f"reached {self.max_steps} steps")
        yield self._give_up(f"it needed more than {self.max_steps} steps", state.done,
                            self.max_steps)

    def _said_first(self, conversation: Conversation) -> Iterator[Event] | None:
        """The events of an answer the loop gives itself, before any model: a picture named
        that does not exist, pictures handed over with nothing asked, a message the model
        cannot read; None when the model answers."""
        try:
            view.focus(conversation)
        except UnknownImage as e:  # no model can do better than say which pictures there are
            return iter([Final(str(e), 0)])
        text = self._received(conversation)
        if text is None:
            text = self._unreadable(conversation)
        return None if text is None else iter([Delta(text), Final(text, 0)])

    def _refresh(self, state: RunState) -> None:
        """Offer more tools when a tool made the chat's first picture, or read numbers to work
        on (the system prompt changes; the rest of the messages stay)."""
        if set(offered(self.registry, state.conversation, state.ran, self.hints).names) != \
                set(state.tools.names):
            state.tools, fresh = self._start(state.conversation, state.ran)
            state.messages[0] = fresh[0]

    def _write(self, state: RunState, step: int, allowed: list[str]):
        """Let the model write this step's reply, streaming what may be shown (nothing when the
        answer is `held` for its check); returns (reply, text written, text shown)."""
        model = self._model(state.conversation, state.tools, allowed, cancel=state.cancel,
                            ran=state.ran, answer_only=state.answer_only, advice=state.advice,
                            first=step == 1)
        reply, written, shown = None, "", ""
        # After a call (or a refused answer) the answer is checked before anyone sees it:
        # held back, not streamed, so that a refused one never reaches the user.
        held = state.held
        for chunk in model.stream(state.messages):
            reply = chunk if reply is None else reply + chunk
            if chunk.content and not chunk.additional_kwargs.get("malformed"):
                written += chunk.content
                now = protocol.before_call(arithmetic.ready(written))
                if not held and len(now) > len(shown):
                    yield Delta(now[len(shown):])
                    shown = now
        return reply, written, shown

    def _on_malformed(self, state: RunState, step: int, reply, written: str, shown: str,
                      allowed: list[str]):
        """A call that cannot be read: sent back once with the reason, then given up."""
        malformed = reply.additional_kwargs["malformed"]
        if state.retried:
            yield self._give_up(f"my tool call could not be read twice ({malformed})",
                                state.done, step)
            return True
        state.retried = True
        yield Note(step, "retry", malformed)
        state.messages += [AIMessage(reply.content),
                           HumanMessage(prompts.render("agent_retry", error=malformed,
                                                       tools=state.tools.names))]
        return False

    def _on_answer(self, state: RunState, step: int, reply, written: str, shown: str,
                   allowed: list[str]):
        """An answer: shown when it claims nothing the run did not do; else sent back once,
        then replaced by what the loop says itself."""
        failed = state.failed
        answer = arithmetic.fix(protocol.strip_tags(reply.content).strip())
        problem = checks.claim_problem(answer, state.conversation, failed and failed[1],
                                       state.made, state.results, state.unmade, state.unread,
                                       state.tools.names, worded=self.hints.on)
        if problem is None:
            text = answer or self._empty(failed)
            if state.held or not answer:
                yield Delta(text)
            elif len(rest := arithmetic.fix(written)) > len(shown):
                yield Delta(rest[len(shown):])
            yield Final(text, step)
            return True
        if state.checked or step == self.max_steps:
            yield from self._honestly(step, problem, state.unsaid, state.conversation,
                                      state.reports, state.tools.names)
            return True
        state.checked = True
        state.answer_only = failed is None and bool(state.results)
        yield Note(step, "check", problem)
        state.messages += [AIMessage(answer),
                           HumanMessage(prompts.render("agent_check", problem=problem))]
        return False

    def _on_call(self, state: RunState, step: int, reply, written: str, shown: str,
                 allowed: list[str]):
        """A call: its result read again from the chat when the chat has it, else run (or
        refused); what it did is recorded and goes back to the model as its observation."""
        if state.answer_only:  # an unguided model called again where its answer was due
            yield from self._honestly(step, "a call came where the answer was due",
                                      state.unsaid, state.conversation, state.reports,
                                      state.tools.names)
            return True
        call = reply.tool_calls[0]
        name, conversation = call["name"], state.conversation
        arguments = self._resolve(name, dict(call["args"]), conversation)
        observation, refused, reused = yield from self._perform(state, step, name, arguments,
                                                                allowed)
        if state.stopped():
            yield Note(step, "stopped", "stopped by the user")
            yield Final("", step, finished=False, stopped=True)
            return True
        makes = getattr(self.registry.tools.get(name), "makes", False)
        state.record(name, arguments, observation, makes, refused, reused,
                     reason_of(observation.text) if observation.error else "")
        if self.prompt == "compact" and not observation.error and \
                isinstance(observation.data.get("answer"), dict):
            # read off a document, the arithmetic done: a small model could only spoil it
            text = observation.data["answer"]["answer"]
            if observation.handles:  # the rows it read, boxed on a copy of the page
                text += f" Marked in {', '.join(observation.handles)}."
            yield Delta(text)
            yield Final(text, step)
            return True
        kind = grounding.asks_kind(view.request(conversation), [observation])
        state.reports += [] if observation.error else [report(name, observation, kind)]
        state.done.append(f"{name}: {observation.text.splitlines()[0]}")
        state.messages += [
            AIMessage("", tool_calls=[{**call, "args": arguments}]),
            ToolMessage(observation_text(self.prompt, name, step, observation.text,
                                         observation.error), tool_call_id=call["id"]),
        ]
        return False

    def _perform(self, state: RunState, step: int, name: str, arguments: dict,
                 allowed: list[str]):
        """The call's observation, and whether the loop refused it and whether the chat's
        earlier result was reused: the same reading read again, a page already read asked
        another question, or the call run (shown as a step)."""
        conversation = state.conversation
        timeout = min(self.registry.timeout, state.left(self.deadline))
        earlier = self._earlier(name, arguments, conversation, state.ran)
        if earlier is not None:  # the chat has its result: read it, do not run it again
            yield Note(step, "reused", f"{call_text(name, arguments)} already ran in this "
                       "chat; its result is read again")
            return Observation(earlier.text, data=earlier.data), False, True
        read = self._read_before(name, arguments, conversation, state.ran)
        if read is not None:  # a new question of a page already read: its kept reading
            yield Note(step, "reused", f"{call_text(name, read.arguments)} already read this "
                       f"page; its reading answers {arguments['question']!r}")
            return self.registry.call(name, arguments, conversation, timeout=timeout,
                                      cancel=state.cancel), False, False
        yield Step(step, name, arguments)
        refused = self._refused(name, arguments, allowed, conversation, state.ran,
                                state.advice)
        observation = refused or self.registry.call(name, arguments, conversation,
                                                    timeout=timeout, cancel=state.cancel)
        yield Step(step, name, arguments, "error" if observation.error else "done",
                   observation.text, observation.handles, observation.seconds,
                   observation.data)
        return observation, refused is not None, False

    def _honestly(self, step: int, why: str, failures: list[tuple[str, str]],
                  conversation: Conversation, reports: list[str],
                  tools: list[str]) -> Iterator[Event]:
        """End the answer with what the loop says itself (`_honest`), noting `why`."""
        yield Note(step, "check", why)
        honest = self._honest(failures, conversation, reports, tools, self.registry.names)
        yield Delta(honest)
        yield Final(honest, step)

    @staticmethod
    def _honest(failures: list[tuple[str, str]], conversation: Conversation,
                reports: list[str] = (), tools: list[str] = (), later: list[str] = ()) -> str:
        """What the loop says itself when the model's answer claimed too much: what the tools
        returned (`reports`: each result in a plain sentence) and what failed (`failures`:
        each (tool, reason) since the last call that worked, the first often saying what
        would work), else what it can do (`tools`: the names of those offered; `later`: of
        all, so that a chat without a picture hears what one would bring)."""
        said = [prompts.render("agent_results", results=list(dict.fromkeys(reports)))] \
            if reports else []
        said += [prompts.render("agent_failed", tool=tool, reason=reason)
                 for tool, reason in dict.fromkeys(failures)]
        if said:
            return "\n".join(said)
        about = view.shown(conversation) if conversation.images else []
        return prompts.render("agent_unsure", pictures=about, tools=list(tools),
                              later=[t for t in later if t not in tools],
                              others=[h for h in conversation.images if h not in about])

    def _received(self, conversation: Conversation) -> str | None:
        """What the loop says itself to a message that brings pictures and asks nothing of them
        ("here are two pictures"): which pictures it has and what it can do with them, rather
        than a tool run nobody asked for. None for any other message."""
        turn = view.last_user(conversation)
        if turn is None or not turn.images or not self.hints.received(turn.text) or \
                view.request(conversation) != turn.text:  # "here too": asks again
            return None
        return prompts.render("agent_unsure", pictures=list(turn.images), received=True,
                              tools=offered(self.registry, conversation,
                                            rules=self.hints).names,
                              others=[h for h in conversation.images if h not in turn.images])

    def _unreadable(self, conversation: Conversation) -> str | None:
        """What the loop says itself, in English, to a message the English default cannot
        read ("把它变成黑白的"), or about a picture in a chat that has none ("what's written on
        the sign?"): what it can do, rather than a tool run on a guess (a new drawing for a
        request to grey the picture) or an answer made up. None for any other message, and
        for any model without the hints."""
        turn = view.last_user(conversation)
        if self.hints.unseen(conversation):  # "what's written on the sign?" with no picture
            return prompts.render("agent_unsure", pictures=[], unseen=True, tools=[], others=[],
                                  later=[n for n, t in self.registry.tools.items()
                                         if t.image_args])
        if turn is None or not self.hints.unreadable(turn.text):
            return None
        return prompts.render("agent_unsure", pictures=view.shown(conversation), foreign=True,
                              tools=offered(self.registry, conversation,
                                            rules=self.hints).names, others=[])

    @staticmethod
    def _empty(failed: tuple[str, str] | None) -> str:
        """An answer for a model that wrote nothing."""
        if failed is not None:
            return prompts.render("agent_failed", tool=failed[0], reason=failed[1])
        return "I have no answer to that; could you say it another way?"

    def _resolve(self, name: str, arguments: dict, conversation: Conversation) -> dict:
        """Image arguments as handles ("the second image" -> "#2"); an unknown one is left for
        the tool call to report, so the model sees the error and can recover. Text the user
        quoted or wrote in capitals for a new picture ('a poster that says "SALE"', "a sign
        saying OPEN") reaches the drawing even when the model's prompt left it out. A small
        model's reading that can answer a question (OCR's `question`) and got none answers
        the message."""
        tool = self.registry.tools.get(name)
        fields = getattr(getattr(tool, "Args", None), "model_fields", {})
        if self.prompt == "compact" and "question" in fields and \
                not fields["question"].is_required() and not arguments.get("question"):
            # a small model's reading asked for by a message: the message is the question
            arguments["question"] = view.request(conversation)
        prompt = arguments.get("prompt")
        if tool is not None and not tool.image_args and isinstance(prompt, str):
            asked = view.last_user(conversation).text
            left_out = [q for q in self.hints.lettering(asked) if q not in prompt]
            arguments["prompt"] = prompt + "".join(f' with the text "{q}"' for q in left_out)
        for key in getattr(tool, "image_args", ()):
            if isinstance(arguments.get(key), str):
                try:
                    arguments[key] = handles.resolve(arguments[key], conversation)
                except UnknownImage:
                    pass
        return arguments

    @staticmethod
    def _give_up(reason: str, done: list[str], step: int) -> Final:
        return Final(prompts.render("agent_give_up", reason=reason, steps=done), step,
                     finished=False)
