"""The Model panel's event: load another model for every chat of the server. Only for an
administrator, and only on a server that this machine alone reaches (a model is named by a
path on the server's disk). What the page says never tells whether a path exists: a load
that fails says so, with the current model still in use, and the reason goes to the server's
log, one line. Not here: loading itself (assistant/engine).
"""

from __future__ import annotations

import logging

import gradio as gr

from assistant.chat_view import model_line
from assistant.engines import LoadBusy
from assistant.errors import AssistantError
from assistant.web.chat import ChatEvents
from assistant.web.context import Context

log = logging.getLogger(__name__)


class ModelEvents:
    def __init__(self, ctx: Context, chat: ChatEvents):
        self.ctx, self.chat = ctx, chat

    def panel(self, request: gr.Request) -> gr.Accordion:
        """The Model panel, shown to those who may use it."""
        return gr.Accordion(visible=self.ctx.can_load_models(self.ctx.who(request)))

    def load_model(self, source: str, quant: str, request: gr.Request,
                   progress=gr.Progress()):  # noqa: B008 (gradio's way)
        """Outputs: the model line, the status line, the notice of a model that failed at
        start (cleared once another loads)."""
        ctx = self.ctx
        if not ctx.can_load_models(ctx.who(request)):
            raise gr.Error("Loading another model is for an administrator, on a server only "
                           "this machine reaches; start the server with --model instead.",
                           print_exception=False)
        source = (source or "").strip()
        what = source or "the embedded default"
        progress(0, desc=f"Loading {what}…")
        try:
            engine = ctx.current.load(ctx.settings.engine.replace(model=source, quant=quant))
        except LoadBusy as e:
            return gr.skip(), f"⚠️ {e}", gr.skip()
        except AssistantError as e:
            log.warning("could not load %s: %s", what, e)
            return gr.skip(), (f"⚠️ Could not load {what} (the server's log says why). The "
                               f"current model ({ctx.current.engine.name}) is still in use."), \
                gr.skip()
        self.chat.agent_for.cache_clear()
        for session in list(ctx.sessions):  # no chat keeps the old model alive
            session.engine, session.agent = engine, None
            if session.current is not None and session.current.finished:
                session.current = None  # its finished answer held the old model too
        return model_line(engine), f"Loaded {engine.name}.", gr.HTML(value="", visible=False)
