"""Weight-only int8 and int4 for the language model, on torch's own packed kernels.

`--quant int8 | int4` replaces the decoder's linear layers and the output head with modules
that keep int8 weights (one scale per output channel) or int4 weights (groups of 64 along
the input, a scale and a zero each) and multiply with `torch._weight_int8pack_mm` /
`_weight_int4pack_mm` (tinygemm; `_for_cpu` on a CPU). The activations go through the matmul
in bfloat16 and come back in the model's dtype. The vision tower and the projector or
Q-Former stay as loaded, as with bitsandbytes (assistant/engine/quant.py).

Unlike bitsandbytes these are plain tensor ops, so they also run on a CPU (int8 there reads a
quarter of fp32's bytes per token, which is what bounds decoding on a few cores) and stay
fast under torch.compile on a GPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

GROUP = 64  # int4 group size along the input dimension
COMPUTE = torch.bfloat16
# On a CPU, from this many rows (a prompt being read, a large batch) an int8 layer widens its
# weight to bfloat16 and makes one oneDNN matmul (AMX where the CPU has it): 4 times faster
# than the packed kernel at 512 rows, as fast at 32; fewer rows (decoding) use the kernel.
WIDEN_ROWS = 32


class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127)
                             .to(torch.int8).contiguous())
        self.register_buffer("scale", scale.to(COMPUTE))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(),
                                                                  requires_grad=False)

    def dequantized(self) -> torch.Tensor:
        return self.weight_int8.float() * self.scale.float()[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() // x.shape[-1] < WIDEN_ROWS or x.device.type != "cpu":
            return packed_int8(x, self.weight_int8, self.scale, self.bias)
        flat = x.reshape(-1, x.shape[-1]).to(COMPUTE)
        y = F.linear(flat, self.weight_int8.to(COMPUTE) * self.scale[:, None]).to(x.dtype)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias.to(x.dtype)


def packed_int8(x: torch.Tensor, weight_int8: torch.Tensor, scale: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """`x` times int8 weights with one scale per output row, on torch's packed kernel: in
    bfloat16, back in `x`'s dtype (also the fused decode step's multiply)."""
    flat = x.reshape(-1, x.shape[-1]).to(COMPUTE)
    y = torch._weight_int8pack_mm(flat, weight_int8, scale).to(x.dtype)
    y = y.reshape(*x.shape[:-1], weight_int8.shape[0])
    return y if bias is None else y + bias.to(x.dtype)


class Int4Linear(nn.Module):
    def __init__(self, linear: nn.Linear, group: int = GROUP):
        super().__init__()
        n, k = linear.out_features, linear.in_features
        if k % group or n % 16:
            raise ValueError(f"int4 needs input sizes divisible by {group} and output sizes by "
                             f"16; this layer is {k} -> {n}")
        self.in_features, self.out_features, self.group = k, n, group
        w = linear.weight.detach().float().reshape(n, k // group, group)
        low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale = ((high - low) / 15).clamp(min=1e-8)
        q = torch.clamp(torch.round((w - low) / scale), 0, 15).to(torch.int32).reshape(n, k)
        zero = low + 8 * scale  # tinygemm reads w = (q - 8) * scale + zero
        self.register_buffer("scales_zeros", torch.stack(
            [scale.squeeze(-1), zero.squeeze(-1)], dim=-1).transpose(0, 1).contiguous().to(COMPUTE))
        self.register_buffer("packed", _pack_int4(q.to(linear.weight.device)))
        self._cpu = linear.weight.device.type == "cpu"
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(),
                                                                  requires_grad=False)
        self._q = q  # the unpacked values, for dequantized(); drop_reference frees them

    def dequantized(self) -> torch.Tensor:
        sz = self.scales_zeros.float()  # [k/group, n, 2]
        q = self._q.float().reshape(self.out_features, -1, self.group)
        scale, zero = sz[..., 0].T[..., None], sz[..., 1].T[..., None]
        return ((q - 8) * scale + zero).reshape(self.out_features, self.in_features)

    def drop_reference(self) -> None:
        self._q = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(COMPUTE)
        mm = torch._weight_int4pack_mm_for_cpu if self._cpu else torch._weight_int4pack_mm
        y = mm(flat, self.packed, self.group, self.scales_zeros).to(x.dtype)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias.to(x.dtype)


def _pack_int4(q: torch.Tensor) -> torch.Tensor:
    """tinygemm's layout: on a CPU from int32 values, on CUDA from bytes of two values."""
    if q.device.type == "cpu":
        return torch._convert_weight_to_int4pack_for_cpu(q.contiguous(), 1)
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
    return torch._convert_weight_to_int4pack(pairs.contiguous(), 8)


KINDS = {"int8": Int8Linear, "int4": Int4Linear}


def quantize_weights(model: nn.Module, kind: str, keep_reference: bool = False) -> int:
    """Replace the language decoder's linear layers and the output head in place; returns how
    many were replaced. `keep_reference` keeps int4's unpacked values for `dequantized()`
    (tests compare against it)."""
    make = KINDS[kind]
    targets: list[nn.Module] = [model.get_decoder()]
    head = model.get_output_embeddings()
    replaced = 0
    for root in targets:
        for parent in list(root.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, _make(make, child, keep_reference))
                    replaced += 1
    if isinstance(head, nn.Linear):
        for parent in model.modules():
            for name, child in list(parent.named_children()):
                if child is head:
                    setattr(parent, name, _make(make, child, keep_reference))
                    replaced += 1
    return replaced


def _make(make, linear: nn.Linear, keep_reference: bool) -> nn.Module:
    module = make(linear)
    if isinstance(module, Int4Linear) and not keep_reference:
        module.drop_reference()
    return module


def reference_linear(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What a quantized layer computes, in float32 from its dequantized weights."""
    return F.linear(x.float(), module.dequantized(), None if module.bias is None
                    else module.bias.float())
