"""Starting the app for tests, on a free port of 127.0.0.1: in this process on a thread
(uvicorn, for a server create_app built), or as `python app.py` in its own process, as
`make run` starts it. Both give the base URL ("http://127.0.0.1:PORT")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def in_thread(asgi) -> Iterator[str]:
    """Serve `asgi` (create_app's server, or any ASGI app) until the block ends, as app.py
    runs it."""
    from assistant.web.proxies import SERVE_OPTIONS

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1,
                                           **SERVE_OPTIONS))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_app(args: list[str], env: dict[str, str], log: Path,
              wait: float = 180) -> tuple[subprocess.Popen, str]:
    """`python app.py --port P ARGS` with `env` over this environment; fails the test with
    the end of `log` if it exits or does not listen within `wait` seconds."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args],
                                cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"app.py did not start listening within {wait:g} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
