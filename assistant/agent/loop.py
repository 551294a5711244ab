"""The agent loop: each turn the model either answers (streamed) or calls a tool; the tool's
observation goes back fenced as data; repeat until an answer, the step limit or the deadline.
A call that cannot be read gets one retry with the reason; after that, and at any limit, the
user gets an honest answer saying what was done."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

import prompts
from assistant.agent import handles, protocol
from assistant.agent.chat_model import EngineChatModel
from assistant.agent.trace import Delta, Event, Final, Note, Step
from assistant.conversation import Conversation
from assistant.errors import UnknownImage


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


def system_prompt(registry, conversation: Conversation, style: str = "full") -> str:
    """The tools and images, in the full prompt or the compact one small models train on."""
    tools = [{"name": s["name"], "description": s["description"],
              "arguments": _arguments(s["parameters"])} for s in registry.schemas()]
    images = [{"handle": h, "name": r.name, "width": r.image.width, "height": r.image.height}
              for h, r in conversation.images.items()]
    return prompts.render(PROMPTS[style], tools=tools, images=images)


def langchain_tools(registry) -> list[StructuredTool]:
    """The registry's tools as langchain tools (their schemas are what the model is offered;
    the loop runs the calls itself, through the registry)."""
    return [StructuredTool.from_function(func=lambda **kw: "", name=t.name,
                                         description=t.description, args_schema=t.Args)
            for t in registry.tools.values()]


def history(conversation: Conversation) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for turn in conversation.turns:
        if turn.role == "user":
            out.append(HumanMessage(turn.text, additional_kwargs={"images": list(turn.images)}))
        else:
            out.append(AIMessage(turn.text))
    return out


def for_settings(engine, registry, settings) -> Agent:
    """An agent as the settings say; prompt "auto" is what the model was trained with (the
    embedded default: compact; any other model: full)."""
    from assistant import embedded

    style = settings.agent_prompt
    if style == "auto":
        style = embedded.AGENT_PROMPT if getattr(engine, "label", "") == embedded.LABEL else "full"
    return Agent(engine, registry, max_steps=settings.agent_max_steps,
                 deadline=settings.agent_deadline, max_new_tokens=settings.max_new_tokens,
                 prompt=style, guided=settings.agent_guided, temperature=settings.temperature)


class Agent:
    def __init__(self, engine, registry, max_steps: int = 5, deadline: float = 300.0,
                 max_new_tokens: int = 256, prompt: str = "full", guided: bool = True,
                 temperature: float | None = None):
        if prompt not in PROMPTS:
            raise ValueError(f"agent prompt must be one of {', '.join(PROMPTS)}; got {prompt!r}")
        self.engine, self.registry, self.prompt = engine, registry, prompt
        self.max_steps, self.deadline, self.max_new_tokens = max_steps, deadline, max_new_tokens
        self.guided = guided  # tool calls decoded to fit their schemas (assistant/agent/grammar.py)
        self.temperature = temperature  # None: the engine's setting

    def _start(self, conversation: Conversation, max_new_tokens: int | None = None,
               cancel: threading.Event | None = None):
        model = EngineChatModel(engine=self.engine, conversation=conversation,
                                max_new_tokens=max_new_tokens or self.max_new_tokens,
                                guided=self.guided, cancel=cancel,
                                temperature=self.temperature)
        model = model.bind_tools(langchain_tools(self.registry))
        return model, [SystemMessage(system_prompt(self.registry, conversation, self.prompt)),
                       *history(conversation)]

    def first_action(self, conversation: Conversation) -> tuple[str, str]:
        """What the model does first with the last user turn: a tool's name, "direct" (it
        answers) or "malformed"; and its raw reply. (For the routing evaluation.)"""
        model, messages = self._start(conversation, max_new_tokens=64)
        reply = model.invoke(messages)
        if reply.additional_kwargs.get("malformed"):
            return "malformed", reply.content
        if reply.tool_calls:
            return reply.tool_calls[0]["name"], json.dumps(reply.tool_calls[0]["args"])
        return "direct", reply.content

    def run(self, conversation: Conversation,
            cancel: threading.Event | None = None) -> Iterator[Event]:
        """Answer the conversation's last (user) turn. Tools' new images are added to
        `conversation`; the caller adds the final answer as the assistant's turn. Setting
        `cancel` stops the answer being written (within one token) or the tool being waited
        for, and ends the run with what was written so far."""
        started = time.monotonic()
        names = self.registry.names
        model, messages = self._start(conversation, cancel=cancel)
        stopped = cancel.is_set if cancel is not None else (lambda: False)
        done: list[str] = []
        retried = False
        for step in range(1, self.max_steps + 1):
            left = self.deadline - (time.monotonic() - started)
            if left <= 0:
                yield Note(step, "deadline", f"stopped after {self.deadline:g} s")
                yield self._give_up(f"it took longer than {self.deadline:g} seconds", done, step)
                return
            reply, written = None, ""
            for chunk in model.stream(messages):
                reply = chunk if reply is None else reply + chunk
                if chunk.content and not chunk.additional_kwargs.get("malformed"):
                    written += chunk.content
                    yield Delta(chunk.content)
            if stopped():
                yield Note(step, "stopped", "stopped by the user")
                yield Final(written.strip(), step, finished=False, stopped=True)
                return
            malformed = reply.additional_kwargs.get("malformed")
            if malformed:
                if retried:
                    yield self._give_up(f"my tool call could not be read twice ({malformed})",
                                        done, step)
                    return
                retried = True
                yield Note(step, "retry", malformed)
                messages += [AIMessage(reply.content),
                             HumanMessage(prompts.render("agent_retry", error=malformed,
                                                         tools=names))]
                continue
            if not reply.tool_calls:
                yield Final(reply.content.strip(), step)
                return
            call = reply.tool_calls[0]
            arguments = self._resolve(call["name"], dict(call["args"]), conversation)
            yield Step(step, call["name"], arguments)
            observation = self.registry.call(call["name"], arguments, conversation,
                                             timeout=min(self.registry.timeout, left),
                                             cancel=cancel)
            status = "error" if observation.error else "done"
            yield Step(step, call["name"], arguments, status, observation.text,
                       observation.handles, observation.seconds, observation.data)
            if stopped():
                yield Note(step, "stopped", "stopped by the user")
                yield Final("", step, finished=False, stopped=True)
                return
            done.append(f"{call['name']}: {observation.text.splitlines()[0]}")
            messages += [
                AIMessage("", tool_calls=[{**call, "args": arguments}]),
                ToolMessage(prompts.render("agent_observation", tool=call["name"], step=step,
                                           text=protocol.fence(observation.text),
                                           error=observation.error),
                            tool_call_id=call["id"]),
            ]
        yield Note(self.max_steps, "limit", f"reached {self.max_steps} steps")
        yield self._give_up(f"it needed more than {self.max_steps} steps", done, self.max_steps)

    def _resolve(self, name: str, arguments: dict, conversation: Conversation) -> dict:
        """Image arguments as handles ("the second image" -> "#2"); an unknown one is left for
        the tool call to report, so the model sees the error and can recover."""
        tool = self.registry.tools.get(name)
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
