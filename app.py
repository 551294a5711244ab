"""Serve the browser chat and the OpenAI-compatible API (/v1) on one port: parse the command
line, build the server (assistant/web/server.py's `create_app`), run it with uvicorn.

`python app.py [--model DIR] [--quant 4bit] [--port N] [--host ADDR] [--auth FILE] [--no-agent]`
(also `make run`). Private by default: binds 127.0.0.1, no share link, no analytics. Another
address needs accounts (--auth FILE), an API key (ASSISTANT_API_KEY), or --no-auth.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from assistant import config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with a vision-language model in the browser.")
    config.add_arguments(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port to serve on (default 7860)")
    parser.add_argument("--history", help="chat history file (SQLite), or 'off' (default: "
                        "history.sqlite3 in the user data folder)")
    parser.add_argument("--auth", metavar="FILE", help="accounts (python -m "
                        "assistant.web.accounts FILE NAME adds one): everyone logs in, and "
                        "sees only their own chats")
    parser.add_argument("--trusted-proxy", dest="trusted_proxies", action="append",
                        metavar="ADDR", help="a proxy in front (address or network, "
                        "repeatable) whose X-Forwarded-For/-Proto/-Host are believed; "
                        "default: none")
    parser.add_argument("--no-auth", action="store_true", default=None,
                        help="serve an address beyond this machine without authentication: "
                        "everyone who reaches it is the same single user")
    parser.add_argument("--memory-budget-mb", type=int, help="memory the answers in flight "
                        "may take together (MiB; default 3072; 0: no budget): past it a "
                        "request waits --memory-wait seconds, then gets a 503")
    parser.add_argument("--memory-wait", type=float, help="seconds a request waits for room "
                        "in the memory budget (default 10)")
    parser.add_argument("--upload-quota-mb", type=int, help="uploads each user may keep on "
                        "the server at once (MiB; default 1024; 0: no quota)")
    parser.add_argument("--history-quota-mb", type=int, help="saved chats each user may keep "
                        "(MiB; default 512; 0: no quota)")
    parser.add_argument("--agent", action=argparse.BooleanOptionalAction, default=True,
                        help="start chats with tools on: the model may call them (default)")
    config.add_tool_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from assistant.errors import AssistantError
    from assistant.web.proxies import SERVE_OPTIONS
    from assistant.web.server import create_app

    try:
        settings = config.from_args(args)  # --host/--port land in Settings.host/.port
        server = create_app(settings, agent_on=args.agent)
    except AssistantError as e:
        sys.exit(f"error: {e}")
    print(f"Serving on http://{settings.host}:{settings.port} (chat) and "
          f"http://{settings.host}:{settings.port}/v1 (API)", file=sys.stderr, flush=True)
    uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=3,  # open page connections do not hold a stop
                **SERVE_OPTIONS)  # forwarded headers: only from --trusted-proxy


if __name__ == "__main__":
    main()
