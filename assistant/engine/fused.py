"""A fused decode step for Llama-family decoders (Llama, Mistral, Qwen2, Qwen3) on a CPU.

Decoding one token of a small model on a few cores is bound less by arithmetic than by the
work around it: a 30-layer decoder runs some 1,400 small tensor operations per token through
transformers' general layers (masks, hooks, shape checks, one projection at a time). This step
computes the same thing with a third of them:

- with int8 or int4 weights (the CPU default: int8 attention, int4 feed-forward), q, k and v
  come out of one matrix multiply, and so do gate and up: the fused weight is one tensor and
  the `Int8Linear` / `Int4Linear` modules are given views into it, so memory is not doubled
  and prefill and state dicts see the same numbers. Plain `nn.Linear` weights are left as
  they are and multiplied one by one;
- RMSNorm is torch's own fused op, attention is SDPA over the cache with grouped heads, as
  transformers does for a one-token query without a mask;
- the key and value go through the model's own `DynamicCache.update`, so prefix reuse, crops
  and copies work on the cache as before.

`install(model)` wraps the decoder's `forward` (assistant/engine/patches.py); the wrapper takes the fused step only where it
gives the same numbers: one row, one new token, a dynamic cache that already holds the prompt,
no padding, no gradients, no outputs asked beyond the last hidden state, and projections that
are still the ones that were fused. Anything else (prefill, batches, static caches, LoRA
wrappers put in later) goes through the decoder's own forward.
"""

from __future__ import annotations

import functools
import weakref

import torch
from torch import nn
from torch.nn import functional as F
from transformers import DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast

from assistant.engine import patches
from assistant.engine.weights import Int4Linear, Int8Linear, packed_int4, packed_int8

MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


class _Projection:
    """Linear layers that read the same input. Int8 and int4 layers are multiplied as one:
    their buffers become views into one fused tensor. Plain layers keep their own parameters
    (a fused copy would not make fp32 decoding faster, it being bound by reading the weights,
    and would hold a second copy while the loaded file stays mapped) and are multiplied one
    by one, without the layers around them, and so are int4 layers whose packed tensors cannot
    be stacked: sizes not in whole blocks of the CPU's layout (64 outputs with AVX-512, 32
    with AVX2), a layout not known, or different groups."""

    def __init__(self, modules: list[nn.Module]):
        self.sizes = [m.out_features for m in modules]
        kind = type(modules[0])
        self.int8 = kind is Int8Linear
        self.int4 = kind is Int4Linear and all(m.unpacks for m in modules) and \
            len({m.group for m in modules}) == 1
        self.fused = self.int8 or self.int4
        self.copied: list[tuple[torch.Tensor, int | None]] = []
        self.bias = None
        if self.fused and modules[0].bias is not None:
            self.bias = _fuse([m.bias for m in modules], modules, "bias")
        if self.int8:
            self.weight = _fuse([m.weight_int8 for m in modules], modules, "weight_int8")
            self.scale = _fuse([m.scale for m in modules], modules, "scale")
        elif self.int4:
            self.group = modules[0].group
            self.weight = _fuse([m.packed for m in modules], modules, "packed")
            # the kernel reads scales and zeros as laid out in memory, and views across the
            # outputs would not be: the modules keep theirs, the step a copy (a quarter of the
            # packed bytes), made again should theirs be written to
            self.copied = [(m.scales_zeros, _version(m.scales_zeros)) for m in modules]
            self.scales_zeros = torch.cat([m.scales_zeros for m in modules], dim=1)
        else:
            self.each = [functools.partial(F.linear, weight=m.weight, bias=m.bias)
                         if kind is nn.Linear else m.forward for m in modules]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not self.fused:
            return [multiply(x) for multiply in self.each]
        y = self.whole(x)
        return list(y.split(self.sizes, dim=-1)) if len(self.sizes) > 1 else [y]

    def refresh(self) -> None:
        """Copy the scales again where a module's were written to since."""
        if any(_version(tensor) != version for tensor, version in self.copied):
            self.scales_zeros = torch.cat([tensor for tensor, _ in self.copied], dim=1)
            self.copied = [(tensor, _version(tensor)) for tensor, _ in self.copied]

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        """The fused layers' outputs side by side, as one tensor."""
        if self.int8:
            return packed_int8(x, self.weight, self.scale, self.bias)
        return packed_int4(x, self.weight, self.group, self.scales_zeros, self.bias)


def _version(tensor: torch.Tensor) -> int | None:
    """How many times `tensor` was written to in place (None for tensors made under
    `torch.inference_mode`, which keep no count)."""
    try:
        return tensor._version
    except RuntimeError:
        return None


def _fuse(parts: list[torch.Tensor], modules: list[nn.Module], name: str) -> torch.Tensor:
    """One tensor of `parts` stacked along the output; each module's `name` becomes a view
    (a parameter stays a parameter)."""
    whole = torch.cat([p.detach() for p in parts]).contiguous()
    start = 0
    for module, part in zip(modules, parts, strict=True):
        view = whole[start:start + part.shape[0]]
        start += part.shape[0]
        if isinstance(part, nn.Parameter):
            setattr(module, name, nn.Parameter(view, requires_grad=part.requires_grad))
        else:
            module.register_buffer(name, view)
    return whole


# (block, projections multiplied as one) in each layer, in the order the step uses them
GROUPS = (("self_attn", ("q_proj", "k_proj", "v_proj")), ("self_attn", ("o_proj",)),
          ("mlp", ("gate_proj", "up_proj")), ("mlp", ("down_proj",)))


class _Layer:
    def __init__(self, layer: nn.Module):
        attn = layer.self_attn
        self.layer = layer
        self.qkv, self.o, self.gate_up, self.down = (
            _Projection([getattr(getattr(layer, block), n) for n in names])
            for block, names in GROUPS)
        self.index = attn.layer_idx
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling


def _slot(block: nn.Module, name: str) -> tuple:
    """Where a fused projection lives, what it is, the tensors it got views of, and its
    weight's address, for checks."""
    module = block._modules[name]
    tensors = {nn.Linear: ("weight",), Int8Linear: ("weight_int8", "scale"),
               Int4Linear: ("packed", "scales_zeros")}[type(module)]
    owned = [(module._parameters if key in module._parameters else module._buffers, key)
             for key in tensors] + [(module._parameters, "bias")]
    weight = owned[0][0][tensors[0]]
    held = tuple((store, key, store.get(key)) for store, key in owned)
    return block._modules, name, module, held, weight, weight.data_ptr()


class FusedDecoder:
    def __init__(self, decoder: nn.Module):
        self.decoder = decoder
        self.config = decoder.config
        self.layers = [_Layer(layer) for layer in decoder.layers[:self.config.num_hidden_layers]]
        self.window = getattr(self.config, "sliding_window", None) \
            if getattr(self.config, "use_sliding_window", True) else None
        self._slots = [_slot(getattr(layer.layer, block), name)
                       for layer in self.layers for block, names in GROUPS for name in names]
        self._answer = None  # the cache of the answer whose weights' addresses were checked

    def same_modules(self) -> bool:
        """The fused projections are still in place, holding the same tensors."""
        return all(modules.get(name) is module and
                   all(store.get(key) is tensor for store, key, tensor in held)
                   for modules, name, module, held, _, _ in self._slots)

    def current(self) -> bool:
        """The same modules, and their weights still at the fused tensors' addresses (not
        re-pointed by `.data =`); int4 scales copied again if written to since."""
        if not self.same_modules() or any(
                weight.data_ptr() != address for *_, weight, address in self._slots):
            return False
        for layer in self.layers:
            layer.qkv.refresh()
            layer.gate_up.refresh()
        return True

    def takes(self, inputs: torch.Tensor, cache, attention_mask, kwargs: dict) -> bool:
        if torch.is_grad_enabled() or self.decoder.training:
            return False
        if inputs.shape[0] != 1 or inputs.shape[1] != 1:
            return False
        if type(cache) is not DynamicCache or cache.get_seq_length() == 0:
            return False
        for name in ("output_attentions", "output_hidden_states"):
            asked = kwargs.get(name, getattr(self.config, name, False))
            if asked is not None and asked is not False:
                return False
        if kwargs.get("return_dict", getattr(self.config, "return_dict", True)) is False:
            return False
        if attention_mask is not None and (attention_mask.dim() != 2 or not bool(attention_mask.all())):
            return False
        if self.window is not None and cache.get_seq_length() >= self.window:
            return False
        # every step: the modules are the fused ones (a LoRA wrapper put in shows at once);
        # the weights' addresses once per answer, i.e. per cache (they change only when
        # someone re-points `.data`, which no generation does)
        answer = self._answer() if self._answer is not None else None
        if answer is cache:
            return self.same_modules()
        if not self.current():
            return False
        self._answer = weakref.ref(cache)
        return True

    def step(self, hidden: torch.Tensor, cache: DynamicCache, position_ids) -> torch.Tensor:
        """One token through every layer; `hidden` is [1, 1, hidden]."""
        if position_ids is None:
            position_ids = torch.tensor([[cache.get_seq_length()]], device=hidden.device)
        cos, sin = self.decoder.rotary_emb(hidden, position_ids=position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for layer in self.layers:
            module = layer.layer
            x = _norm(module.input_layernorm, hidden)
            d, attn = layer.head_dim, module.self_attn
            if layer.qkv.fused and not hasattr(attn, "q_norm"):
                # q and k lie side by side in the fused output: rotated as one
                y = layer.qkv.whole(x)
                n, heads = layer.qkv.sizes[0] + layer.qkv.sizes[1], layer.qkv.sizes[0] // d
                qk = _rotate(y[..., :n].view(1, 1, -1, d).transpose(1, 2), cos, sin)
                q, k, v = qk[:, :heads], qk[:, heads:], y[..., n:]
            else:
                q, k, v = layer.qkv(x)
                q, k = q.view(1, 1, -1, d), k.view(1, 1, -1, d)
                if hasattr(attn, "q_norm"):  # Qwen3 normalises each head before rotating it
                    q, k = _norm(attn.q_norm, q), _norm(attn.k_norm, k)
                q = _rotate(q.transpose(1, 2), cos, sin)
                k = _rotate(k.transpose(1, 2), cos, sin)
            keys, values = cache.update(k, v.view(1, 1, -1, d).transpose(1, 2), layer.index)
            out = F.scaled_dot_product_attention(q, keys, values, scale=layer.scaling,
                                                 enable_gqa=keys.shape[1] != q.shape[1])
            hidden = hidden + layer.o(out.transpose(1, 2).reshape(1, 1, -1))[0]
            x = _norm(module.post_attention_layernorm, hidden)
            gate, up = layer.gate_up(x)
            hidden = hidden + layer.down(F.silu(gate) * up)[0]
        return _norm(self.decoder.norm, hidden)


def _norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torch's fused RMSNorm in float32; in lower precisions the module itself, which rounds
    before it scales."""
    if x.dtype != torch.float32:
        return norm(x)
    return F.rms_norm(x, (x.shape[-1],), norm.weight, norm.variance_epsilon)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def supported(model: nn.Module) -> str | None:
    """None when the fused step fits this model's decoder, else why not."""
    decoder = model.get_decoder()
    config = getattr(decoder, "config", None)
    if config is None or config.model_type not in MODEL_TYPES:
        return f"decoder type {getattr(config, 'model_type', '?')} is not one of {MODEL_TYPES}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act}"
    if not hasattr(decoder, "rotary_emb") or not hasattr(decoder, "norm"):
        return "no rotary embedding or final norm"
    for layer in decoder.layers:
        attn, mlp = layer.self_attn, layer.mlp
        projections = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
                       mlp.gate_proj, mlp.up_proj, mlp.down_proj]
        if any(type(p) not in (nn.Linear, Int8Linear, Int4Linear) for p in projections):
            return "projections are not all plain, int8 or int4 linear layers"
        if any((p.weight if type(p) is nn.Linear else next(p.buffers())).device.type != "cpu"
               for p in projections):
            return "not on the CPU"
        for group in ([attn.q_proj, attn.k_proj, attn.v_proj], [mlp.gate_proj, mlp.up_proj]):
            if len({p.bias is None for p in group}) != 1 or len({type(p) for p in group}) != 1:
                return "the projections of a group (q/k/v, gate/up) differ in kind or biases"
    for norm in (decoder.norm, decoder.layers[0].input_layernorm):
        if not hasattr(norm, "variance_epsilon") or norm.weight.shape[-1] != config.hidden_size:
            return "norms are not RMSNorm"
    return None


def install(model: nn.Module) -> bool:
    """Give the model's decoder the fused decode step (assistant/engine/patches.py wraps its
    forward); False (and nothing changed) when the model is not one it fits."""
    if supported(model) is not None or patches.decoder_forward_misfit(model) is not None:
        return False
    decoder = model.get_decoder()
    if hasattr(decoder, "fused_decode"):
        return True
    fused = FusedDecoder(decoder)

    def make(original):
        @functools.wraps(original)
        def forward(input_ids=None, attention_mask=None, position_ids=None,
                    past_key_values=None, inputs_embeds=None, use_cache=None, **kwargs):
            one = inputs_embeds if inputs_embeds is not None else input_ids
            if one is not None and one.shape[:2] == (1, 1) and use_cache is not False and \
                    fused.takes(one, past_key_values, attention_mask, kwargs):
                hidden = inputs_embeds if inputs_embeds is not None else decoder.embed_tokens(one)
                return BaseModelOutputWithPast(
                    last_hidden_state=fused.step(hidden, past_key_values, position_ids),
                    past_key_values=past_key_values)
            return original(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, past_key_values=past_key_values,
                            inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs)

        return forward

    return patches.wrap_decoder_forward(model, make, "fused_decode", fused)
