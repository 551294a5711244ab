"""A model that cannot load at start: the app still starts, on the embedded default, and the
page says which model failed and why; the API answers with the model in use; the log says it
in one line, with no traceback (and no warning about packages the app does not use)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.serving import start_app, stop

pytestmark = pytest.mark.integration


def test_a_model_that_cannot_load_is_named_on_the_page_and_the_default_answers(tmp_path):
    missing = tmp_path / "no-such-model"
    proc, url = start_app(["--model", str(missing), "--history", "off", "--no-agent"],
                          {"ASSISTANT_MAX_NEW_TOKENS": "8"}, tmp_path / "app.log")
    try:
        page = urllib.request.urlopen(f"{url}/config", timeout=30).read().decode()
        assert "could not be loaded" in page and "no such directory" in page
        assert "load another model in the Model panel" in page
        models = json.loads(urllib.request.urlopen(f"{url}/v1/models", timeout=30).read())
        assert [m["id"] for m in models["data"]][0] == "embedded-default"
    finally:
        stop(proc)
    log = (tmp_path / "app.log").read_text()
    assert "could not be loaded" in log
    assert "Traceback" not in log and "pip install kernels" not in log, log[-3000:]
