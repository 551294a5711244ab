"""Model assembly, below both the engine (which runs what is assembled) and training (which
trains it): backbones out of PyPI wheels (offline.py), composing a new vision-language model
from a vision encoder and a language model (compose.py), recipes and their adapters
(recipe.py, adapter.py), bitsandbytes configurations (bnb.py) and the embedded default
(embedded/, assembled on first use). The model classes themselves are assistant/vlm/.
"""
