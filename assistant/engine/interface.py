"""What the rest of the assistant needs of a model, whoever runs it: the local engine
(`assistant.engine.Engine`) and a remote OpenAI-compatible server (`remote.RemoteEngine`)
both provide it. Questions such as "is this the embedded default?" ask `kind`, nothing else.
An engine whose `tool_protocol` is "native" (a remote server that calls tools) also has
`stream_tools(messages, params, tools, must_call)`: OpenAI chat messages in, the reply's text
streamed and its tool calls read back (remote.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from assistant.config import EngineSettings
    from assistant.conversation import Conversation
    from assistant.engine import Reply
    from assistant.engine.request import GenerationParams

Kind = Literal["embedded", "local", "remote"]


@runtime_checkable
class ChatEngine(Protocol):
    kind: Kind  # the embedded default, another checkpoint run here, or a remote server
    settings: EngineSettings
    # how the agent's tool calls go: "text" (described in the prompt, written in the answer,
    # read by the agent) or "native" (OpenAI tools, the calls read back from the server)
    tool_protocol: str

    @property
    def name(self) -> str:
        """What to show the user: the model and where it runs (no cache paths)."""

    @property
    def model_id(self) -> str:
        """The model's name in the API's `model` field."""

    @property
    def device(self) -> str:
        """Where it runs: "cpu", "cuda", "mps", or "remote URL"."""

    @property
    def quant(self) -> str:
        """How its weights are held: "none", "int4-mlp", "4bit", ..., or "remote"."""

    @property
    def context_tokens(self) -> int: ...

    @property
    def agent_prompt(self) -> str | None:
        """The agent prompt the model was trained to call tools in ("compact"), or None: not
        known (it gets the full one)."""

    def default_params(self, **overrides) -> GenerationParams: ...

    def stream(self, conversation: Conversation,
               params: GenerationParams | None = None) -> Reply:
        """Start answering the conversation's last (user) turn."""

    def answer(self, conversation: Conversation,
               params: GenerationParams | None = None) -> str:
        """The whole answer as text."""
