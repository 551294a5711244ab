"""Every change the engine makes to objects it does not own (transformers' models, processors
and caches, torch's tensors), in one place, with the checks that they still fit.

| patch | on | made by | for |
|---|---|---|---|
| `forward` wrapped | a Llama-family decoder | fused.py | a fused CPU decode step |
| `get_image_features` wrapped | every module of the model with one | reuse.ImageFeatureCache | a picture seen before is not encoded again |
| `image_processor` replaced | the processor | reuse.ProcessedImages | a follow-up's pictures processed once |
| attributes set | pixel tensors (`_digests`); the arena's buffers (static addresses for torch.compile) | reuse.freeze, arena.py | digests worked out once; CUDA graphs that stay valid |
| `holders` set, layers copied, `keys` / `values` pointed elsewhere | KV caches and their layers | reuse.py, arena.py | kept prefixes lent, cut and moved |

`check(model, processor)` runs when an engine is made: for each patch, whether its target
still has the shape the patch relies on (the parameters a wrapper passes on, the attributes of
cache layers it rewrites). A patch whose target does not fit is not made and the log says why;
the engine works without it (slower: no fused step, no feature cache, no kept prefixes), never
with a patch that does not fit. Only the functions here write to those objects.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

DECODER_FORWARD = "decoder forward"
IMAGE_FEATURES = "image features"
IMAGE_PROCESSOR = "image processor"
CACHES = "kv caches"

# what the fused step's wrapper passes on to the decoder's own forward by name
FORWARD_PARAMETERS = ("input_ids", "attention_mask", "position_ids", "past_key_values",
                      "inputs_embeds", "use_cache")


# -- checks ------------------------------------------------------------------------------
def check(model, processor) -> dict[str, str | None]:
    """Each patch's name -> None when its target fits, else why not (logged)."""
    found = {
        DECODER_FORWARD: decoder_forward_misfit(model),
        IMAGE_FEATURES: image_features_misfit(model),
        IMAGE_PROCESSOR: image_processor_misfit(processor),
        CACHES: caches_misfit(model),
    }
    for name, why in found.items():
        if why is not None:
            log.info("not patching %s: %s", name, why)
    return found


def decoder_forward_misfit(model) -> str | None:
    get = getattr(model, "get_decoder", None)
    decoder = get() if callable(get) else None
    if decoder is None or not callable(getattr(decoder, "forward", None)):
        return "the model has no decoder with a forward"
    return _missing_parameters(decoder.forward, FORWARD_PARAMETERS)


def image_features_misfit(model) -> str | None:
    methods = _image_feature_methods(model)
    if not methods:
        return "no module has get_image_features"
    for method in methods:
        parameters = list(inspect.signature(method).parameters)
        if not parameters or parameters[0] != "pixel_values":
            return f"get_image_features takes {parameters[:1]} first, not pixel_values"
    return None


def image_processor_misfit(processor) -> str | None:
    inner = getattr(processor, "image_processor", None)
    if inner is None or not callable(inner):
        return "the processor has no callable image_processor"
    return None


def caches_misfit(model) -> str | None:
    """Do transformers' caches have the layers and attributes the prefix cache and the arena
    rewrite (a list of layers; each with keys, values, is_initialized; dynamic layers made
    with lazy_initialization; static layers with max_cache_len and cumulative_length)?"""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer, StaticLayer

    try:
        cache = DynamicCache(config=model.config.get_text_config())
        layer = DynamicLayer()
        static = StaticLayer(max_cache_len=1)
    except (TypeError, ValueError, AttributeError) as e:
        return f"caches are not made as expected ({e})"
    if not isinstance(getattr(cache, "layers", None), list):
        return "a cache has no list of layers"
    for name in ("keys", "values", "is_initialized", "lazy_initialization"):
        if not hasattr(layer, name):
            return f"a dynamic cache layer has no {name}"
    for name in ("max_cache_len", "cumulative_length"):
        if not hasattr(static, name):
            return f"a static cache layer has no {name}"
    if not callable(getattr(torch._dynamo, "mark_static_address", None)):
        return "torch._dynamo has no mark_static_address"
    return None


def _missing_parameters(function, names) -> str | None:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return "its signature cannot be read"
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    missing = [n for n in names if n not in parameters]
    return f"its forward takes no {', '.join(missing)}" if missing else None


def _image_feature_methods(model) -> list:
    seen, methods = set(), []
    for module in model.modules():
        method = getattr(module, "get_image_features", None)
        if callable(method) and id(module) not in seen:
            seen.add(id(module))
            methods.append(method)
    return methods


# -- models and processors ---------------------------------------------------------------------
def wrap_decoder_forward(model, make: Callable[[Callable], Callable], marker: str,
                         value) -> bool:
    """Replace the decoder's `forward` by `make(original)` and set `marker` on the decoder
    to `value`; once only (False when it does not fit or is already made)."""
    decoder = model.get_decoder()
    if hasattr(decoder, marker) or decoder_forward_misfit(model) is not None:
        return False
    decoder.forward = make(decoder.forward)
    setattr(decoder, marker, value)
    return True


def wrap_image_features(model, make: Callable[[Callable], Callable]) -> int:
    """Replace each module's `get_image_features` by `make(original)`; how many were."""
    if image_features_misfit(model) is not None:
        return 0
    count, seen = 0, set()
    for module in model.modules():
        method = getattr(module, "get_image_features", None)
        if callable(method) and id(module) not in seen:
            seen.add(id(module))
            module.get_image_features = make(method)
            count += 1
    return count


def replace_image_processor(processor, make: Callable[[object], object], kind: type) -> bool:
    """Put `make(current)` in the processor's `image_processor` place, unless it is a `kind`
    already or does not fit."""
    if image_processor_misfit(processor) is not None:
        return False
    inner = processor.image_processor
    if not isinstance(inner, kind):
        processor.image_processor = make(inner)
    return True


def get_attached(model, name: str):
    return getattr(model, name, None)


def attach(model, name: str, value) -> None:
    """Keep one of ours on a model (its image feature cache), found again by `get_attached`."""
    setattr(model, name, value)


# -- tensors -------------------------------------------------------------------------------
def tag_tensor(tensor: torch.Tensor, name: str, value) -> torch.Tensor:
    setattr(tensor, name, value)
    return tensor


def mark_static(tensor: torch.Tensor) -> torch.Tensor:
    """Tell torch.compile the tensor keeps its address (CUDA graphs write it in place)."""
    torch._dynamo.mark_static_address(tensor)
    return tensor


# -- caches --------------------------------------------------------------------------------
def set_holders(cache, holders) -> None:
    cache.holders = holders


def holders_of(cache):
    return getattr(cache, "holders", None)


def copy_cache(cache):
    """A cache object of its own whose layers are copies that share the same tensors."""
    lent = copy.copy(cache)
    lent.layers = [copy.copy(layer) for layer in cache.layers]
    return lent


def point(layer, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Make a cache layer hold `keys` and `values` (views, cuts or copies of its own)."""
    layer.keys, layer.values = keys, values


def new_layer_viewing(keys: torch.Tensor, values: torch.Tensor):
    """A dynamic cache layer that holds `keys` and `values` themselves (no copy)."""
    from transformers.cache_utils import DynamicLayer

    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    point(layer, keys, values)
    return layer
