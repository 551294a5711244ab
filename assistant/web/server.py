"""The whole server in one call: `create_app(settings)` loads the model (if it cannot, the
embedded default answers and the page says why), builds the tools, opens the history, and
puts the browser page (gradio, at /) and the OpenAI-compatible API (/v1) behind one gate.
app.py parses the command line and runs the result with uvicorn; tests call it directly.

Who can reach what (the README's security model): on a loopback address without accounts or
API key, whoever reaches the port is the single user `local`, who may also load another model
(requests addressed to another host name are refused: assistant/web/gate.py says why).
Elsewhere the server refuses to start without a users file (--auth) or an API key, unless
--no-auth says that everyone who reaches it is that single user (the model switcher is then
off: it names paths on the server's disk). Uploaded files are used only by the user who sent
them; gradio's check that a message's files were uploaded (which `launch()` turns on and a
mounted app skips) is turned on here. A file is served only to a user who may see it
(assistant/web/files.py), a page's queue and streams only to the user who opened them
(assistant/web/queue_owners.py). Uploads and saved chats are kept within disk quotas per
user and per server (assistant/web/quotas.py, assistant/store.py), the answers in flight
within one memory budget, shared with the API (assistant/memory_budget.py).
"""

from __future__ import annotations

import ipaddress
import logging
import sys

import gradio as gr
from fastapi import FastAPI
from gradio.utils import get_upload_folder

from assistant import api
from assistant.config import Settings
from assistant.engines import Current, open_engine
from assistant.errors import AssistantError
from assistant.memory_budget import MIB, MemoryBudget
from assistant.store import LOCAL, Store
from assistant.web.accounts import Accounts, User
from assistant.web.bodies import BoundedBodies
from assistant.web.context import Context
from assistant.web.files import OwnFiles
from assistant.web.gate import Gate, Gated
from assistant.web.origins import SameOrigin
from assistant.web.page import CSS, HEAD, build_page
from assistant.web.proxies import TrustedProxies, networks
from assistant.web.queue_owners import BindQueue
from assistant.web.quotas import UploadQuotas
from assistant.web.uploads import RecordUploads, Uploads

CACHE_CLEANING = (3600, 6 * 3600)  # every hour, uploads and shown files older than 6 hours go


class NotServed(AssistantError):
    """The server will not start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may well be reachable from elsewhere
        return False


def create_app(settings: Settings, *, agent_on: bool = True, current: Current | None = None,
               registry=None, store: Store | None = None) -> FastAPI:
    """The server for `settings`. `current`, `registry` (the tools) and `store` are made from
    the settings unless given. Raises NotServed (an exposed address without authentication,
    a share link), ValueError (a bad users file) or BadSetting (a trusted proxy that is no
    address) before loading anything. Run it with `SERVE_OPTIONS` (assistant/web/proxies.py)."""
    accounts = Accounts.read(settings.auth) if settings.auth else None
    networks(settings.trusted_proxies)  # BadSetting now, not after the model loaded
    exposed = not is_loopback(settings.host)
    if settings.share:
        raise NotServed("share links are not offered: the app and its API serve this machine "
                        "only (--host 0.0.0.0 serves your network, with --auth or an API key).")
    if exposed and accounts is None and not settings.api_key and not settings.no_auth:
        raise NotServed(
            f"Refusing to serve {settings.host} without authentication: anyone who can reach "
            "it could read, continue and delete every saved chat and use the model. Give "
            "--auth FILE (accounts: python -m assistant.web.accounts FILE NAME adds one) or "
            "ASSISTANT_API_KEY, or --no-auth if everyone who can reach it may do all that.")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its import warns on CPUs
    notice = ""
    if current is None:
        current, notice = start_engine(settings)
    if registry is None:
        from tools.registry import build

        # Tools backed by the chat model (vqa, caption "main") use whichever model is current.
        registry = build(settings.tools, engine=lambda: current.engine)
    if store is None and settings.history != "off":
        store = Store(settings.history, quota=settings.history_quota_mb * MIB,
                      total_quota=settings.history_quota_total_mb * MIB)
    gate = Gate(accounts, settings.api_key, User(LOCAL, admin=True), settings.login_hours,
                local_only=not exposed)
    memory = MemoryBudget(settings.memory_budget_mb, settings.memory_wait)  # page and API
    ctx = Context(current, settings, gate, Uploads(get_upload_folder()), registry, store,
                  agent_on=agent_on, exposed=exposed, notice=notice, memory=memory)
    demo = build_page(ctx)
    demo.delete_cache = CACHE_CLEANING
    # One event at a time per listener but answers (see page.py); others wait in the queue,
    # and the page shows their place in it.
    demo.queue(default_concurrency_limit=1, max_size=64)
    server = FastAPI(title="multimodal-assistant", docs_url=None, redoc_url=None,
                     openapi_url=None)
    api.mount(server, api.Api(current, registry, settings, memory))
    gr.mount_gradio_app(server, demo, path="/", run_history=False,
                        max_file_size=settings.max_image_bytes, css=CSS, head=HEAD,
                        auth_dependency=lambda request: request.state.user.name)
    demo.has_launched = True  # gradio's check that a message's files were uploaded
    server.add_middleware(RecordUploads, uploads=ctx.uploads)
    server.add_middleware(UploadQuotas, folder=ctx.uploads.folder,
                          per_user=settings.upload_quota_mb * MIB,
                          total=settings.upload_quota_total_mb * MIB)
    server.add_middleware(OwnFiles, uploads=ctx.uploads)
    server.add_middleware(BindQueue)
    server.add_middleware(BoundedBodies, limits=settings.limits)
    server.add_middleware(Gated, gate=gate)
    server.add_middleware(SameOrigin)  # before the gate: /login and /v1 too
    server.add_middleware(TrustedProxies, proxies=settings.trusted_proxies)  # the outermost
    server.state.context = ctx
    return server


def start_engine(settings: Settings) -> tuple[Current, str]:
    """The model asked for; if it cannot load, the embedded default and the reason, shown on
    the page (the Model panel loads another). Without a fallback, NotServed."""
    print(f"Loading {settings.model or 'the embedded default model'} (the first start of the "
          "embedded default assembles it in the user cache, about a minute)…",
          file=sys.stderr, flush=True)
    try:
        return Current(open_engine(settings.engine)), ""
    except AssistantError as e:
        if not (settings.model or settings.remote):
            raise NotServed(f"The embedded default model could not load: {e}") from None
        wanted = settings.remote or settings.model
        reason = (f"{wanted} could not be loaded: {e} The embedded default answers instead; "
                  "load another model in the Model panel.")
        print(reason, file=sys.stderr, flush=True)
        fallback = settings.replace(model="", remote="", quant="auto")
        return Current(open_engine(fallback.engine)), reason
