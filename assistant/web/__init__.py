"""The web server: the browser chat (gradio) and the OpenAI-compatible API on one port, behind
one gate. server.py builds it (`create_app`); gate.py and accounts.py say who may come in;
bodies.py how much a request may send, origins.py that no other site's page reads it;
uploads.py which files a user may send; page.py lays out the page; chat.py, history.py and
models.py are its events, context.py what they share. Kept free of imports here, so that
`python -m assistant.web.accounts` starts quickly."""
