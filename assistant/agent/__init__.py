"""The agent: the model that sees the images also decides which tool to call, step by step,
with every step emitted as a trace event. `Agent(engine, registry).run(conversation)`.

Parts: protocol (how a call is written and read), chat_model (the engine as a langchain chat
model), handles (what "the second image" means), trace (the events), loop (the agent itself).
"""

from assistant.agent.loop import Agent, for_settings
from assistant.agent.trace import Delta, Event, Final, Note, Step

__all__ = ["Agent", "Delta", "Event", "Final", "Note", "Step", "for_settings"]
