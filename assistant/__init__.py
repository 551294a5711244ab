"""A local multimodal chat assistant: see README.md. Entry points: assistant.cli (terminal),
app.py (browser), assistant.engine.Engine (library)."""
