"""Measuring a model: visual question answering (vqa.py), the agent's first action on single
requests (routing.py) and whole scripted chats (scenarios.py), with their dev and held-out
sets in data/. `python -m assistant.eval --help` (cli.py)."""
