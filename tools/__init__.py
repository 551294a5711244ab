"""Vision tools the agent can call (captioning, VQA, OCR, detection, drawing, ...).

One module per tool with a shared base and registry. The engine and the plain chat do not need
any tool; the agent loads tools on first use.
"""
