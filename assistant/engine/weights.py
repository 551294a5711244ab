"""Weight-only int8 and int4 for the language model, on torch's own packed kernels.

`--quant int8 | int4` replaces the decoder's linear layers and the output head with modules
that keep int8 weights (one scale per output channel) or int4 weights (groups of 32 on a CPU
and 64 on a GPU along the input, a scale and a zero each) and multiply with
`torch._weight_int8pack_mm` / `_weight_int4pack_mm` (tinygemm; `_for_cpu` on a CPU). The
activations go through the matmul in bfloat16 and come back in the model's dtype. The vision
tower and the projector or Q-Former stay as loaded, as with bitsandbytes
(assistant/engine/quant.py). `--quant int4-mlp` mixes them: see `quantize_weights`.

Unlike bitsandbytes these are plain tensor ops, so they also run on a CPU (int8 there reads a
quarter of fp32's bytes per token and int4 about a sixth (4 bits a weight and, in groups of
32, 1 more for its scale and zero), which is what bounds decoding on a few cores) and stay
fast under torch.compile on a GPU. Both kernels are made for few rows (decoding): for many (a
prompt being read) a layer widens its weight to bfloat16 and makes one plain matmul (oneDNN,
cuBLAS); int4 reads its packed layout back for that, a CPU's or a GPU's, checked at load
against the layer's own values.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional as F

from assistant.errors import BadSetting

GROUP = 64  # int4 group size along the input dimension on a GPU
# On a CPU the kernel is as fast with groups of 32, llama.cpp's Q4 block: weights that come from
# such a file (the offline default's feed-forward layers) keep their values, up to bfloat16
# scales and zeros
CPU_GROUP = 32
COMPUTE = torch.bfloat16
# On a CPU, from this many rows (a prompt being read, a large batch) an int8 layer widens its
# weight to bfloat16 and makes one oneDNN matmul (AMX where the CPU has it): 4 times faster
# than the packed kernel at 512 rows, as fast at 32; fewer rows (decoding) use the kernel.
WIDEN_ROWS = 32
INT4_WIDEN_ROWS = 64  # int4 unpacks its weight (1 ms per million) for a oneDNN matmul from here
# On a GPU tinygemm is a decode kernel: at 512 rows some ten times slower than a bfloat16 matmul
# (an image's prompt is 600 rows), as fast at 16 to 64. From here int4 widens its weight to
# bfloat16 for a cuBLAS matmul; a follow-up's question, decode steps and batches stay packed.
CUDA_WIDEN_ROWS = 128


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
        return _output(x, F.linear(flat, self.weight_int8.to(COMPUTE) * self.scale[:, None]),
                       self.bias)


def packed_int8(x: torch.Tensor, weight_int8: torch.Tensor, scale: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """`x` times int8 weights with one scale per output row, on torch's packed kernel: in
    bfloat16, back in `x`'s dtype (also the fused decode step's multiply)."""
    flat = x.reshape(-1, x.shape[-1]).to(COMPUTE)
    return _output(x, torch._weight_int8pack_mm(flat, weight_int8, scale), bias)


def _output(x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A multiply's flat output `y` back in `x`'s dtype and leading shape, plus the bias."""
    y = y.to(x.dtype).reshape(*x.shape[:-1], y.shape[-1])
    return y if bias is None else y + bias.to(x.dtype)


class Int4Linear(nn.Module):
    def __init__(self, linear: nn.Linear, group: int | None = None):
        super().__init__()
        n, k = linear.out_features, linear.in_features
        self._cpu = linear.weight.device.type == "cpu"
        group = group or _int4_group(linear)
        if not _takes_int4(linear, group):
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
        # the packed layout is read back to widen for many rows: checked here against the
        # values themselves (a layout not known only loses the widening and, on a CPU, the
        # stacking)
        layout = cpu_layout() if self._cpu else None
        readable = n % layout[0] == 0 if layout is not None else \
            self.packed.device.type == "cuda"
        self.unpacks = readable and torch.equal(self._read_back(), q.to(torch.uint8))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(),
                                                                  requires_grad=False)
        self._q = q  # the unpacked values, for dequantized(); drop_reference frees them

    def values(self) -> torch.Tensor:
        """The 4-bit values, [out, in], 0 to 15."""
        if self._q is not None:
            return self._q
        if not self.unpacks:
            raise RuntimeError("this int4 layer kept no unpacked values")
        return self._read_back()

    def _read_back(self) -> torch.Tensor:
        """The values from the packed tensor, in the CPU's layout or CUDA's."""
        unpack = _unpack_int4_cpu if self._cpu else _unpack_int4_cuda
        return unpack(self.packed, self.out_features, self.in_features)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight, [out, in]: (q - 8) * scale + zero in float32 as tinygemm computes it,
        rounded once to `dtype`."""
        sz = self.scales_zeros.float().transpose(0, 1)  # [out, in / group, 2]
        q = self.values().float().reshape(self.out_features, -1, self.group)
        weight = (q - 8) * sz[..., 0:1] + sz[..., 1:2]
        return weight.reshape(self.out_features, self.in_features).to(dtype)

    def drop_reference(self) -> None:
        self._q = None

    def widened(self) -> torch.Tensor:
        """The weight in bfloat16, [out, in], as tinygemm computes it. On a GPU in three
        passes (5 bytes moved a value; a 7B model's largest layer holds 135 MB while it is
        made, 90 MB after); on a CPU through dequantized()."""
        if self._cpu:
            return self.dequantized(COMPUTE)
        n, k, group = self.out_features, self.in_features, self.group
        values = _unpack_int4_cuda(self.packed, n, k).view(n, k // group, group)
        scale = self.scales_zeros[..., 0].t().unsqueeze(-1)  # [out, in / group, 1]
        # (q - 8) * scale + zero as q * scale + (zero - 8 scale): that, small, in float32
        zero = torch.add(self.scales_zeros[..., 1].t().float(), scale[..., 0],
                         alpha=-8).unsqueeze(-1)
        weight = torch.empty(n, k, dtype=COMPUTE, device=values.device)
        # products in float32, the sum rounded to bfloat16 (a kernel that reads its inputs in
        # the output's type rounds the zero first: one bfloat16 step at most)
        torch.addcmul(zero, values, scale, out=weight.view(n, k // group, group))
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unpacks and x.numel() // x.shape[-1] >= (INT4_WIDEN_ROWS if self._cpu
                                                         else CUDA_WIDEN_ROWS):
            flat = x.reshape(-1, x.shape[-1]).to(COMPUTE)
            return _output(x, F.linear(flat, self.widened()), self.bias)
        return packed_int4(x, self.packed, self.group, self.scales_zeros, self.bias)


def packed_int4(x: torch.Tensor, packed: torch.Tensor, group: int, scales_zeros: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """`x` times tinygemm-packed int4 weights, in bfloat16, back in `x`'s dtype (also the
    fused decode step's multiply)."""
    # CUDA's kernel takes only a contiguous matrix: the last position of each row of a batch
    # (the logits a step keeps) is a strided view
    flat = x.reshape(-1, x.shape[-1]).to(COMPUTE).contiguous()
    mm = torch._weight_int4pack_mm_for_cpu if packed.device.type == "cpu" \
        else torch._weight_int4pack_mm
    return _output(x, mm(flat, packed, group, scales_zeros), bias)


def _pack_int4(q: torch.Tensor) -> torch.Tensor:
    """tinygemm's layout: on a CPU from int32 values, on CUDA from bytes of two values, in
    tiles of 16 inputs, 8 tiles at a time where the input size allows (gpt-fast's choice),
    else 4 or 2."""
    if q.device.type == "cpu":
        return torch._convert_weight_to_int4pack_for_cpu(q.contiguous(), 1)
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
    tiles = next(t for t in (8, 4, 2) if q.shape[1] % (16 * t) == 0)
    return torch._convert_weight_to_int4pack(pairs.contiguous(), tiles)


# How torch packs int4 on a CPU depends on the instruction set it picked: blocks of `rows`
# rows, input by input, each byte holding two rows of its block: row r and r + rows / 2
# ("halves": 64 with AVX-512, 32 with AVX2) or rows 2r and 2r + 1 ("pairs": no SIMD). So
# packed weights belong to the machine that packed them: they are made at load, never saved.
LAYOUTS = ((64, "halves"), (32, "halves"), (32, "pairs"))


@functools.cache
def cpu_layout() -> tuple[int, str] | None:
    """This torch's CPU int4 layout, found by packing a probe; None if none of LAYOUTS."""
    probe = torch.randint(0, 16, (128, 64), generator=torch.Generator().manual_seed(0),
                          dtype=torch.int32)
    packed = torch._convert_weight_to_int4pack_for_cpu(probe, 1)
    for layout in LAYOUTS:
        if torch.equal(_unpack(packed, 128, 64, *layout), probe.to(torch.uint8)):
            return layout
    return None


def _unpack_int4_cpu(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The values, [n, k], back from a CPU-packed tensor."""
    return _unpack(packed, n, k, *cpu_layout())


def _unpack(packed: torch.Tensor, n: int, k: int, rows: int, pairing: str) -> torch.Tensor:
    blocks = packed.reshape(n // rows, k, rows // 2)
    low, high = blocks & 0xF, blocks >> 4
    both = torch.cat([low, high], dim=-1) if pairing == "halves" else \
        torch.stack([low, high], dim=-1).reshape(n // rows, k, rows)
    return both.transpose(1, 2).reshape(n, k)


def _unpack_int4_cuda(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The values, [n, k] uint8, back from tinygemm's CUDA layout:
    [n / 8][k / (16 t)][32][t / 2] int32, t tiles of 16 inputs at a time. Lane l of the 32
    holds row l // 4 of its 8 rows and, of each 16 inputs, those at 2 (l % 4) + 8 i0 + h
    (i0, h: 0 or 1); each int32 holds two tiles (i1), its nibble 4 h + 2 i1 + i0 that value:
    byte 2 h + i1, the low nibble for i0 = 0. Two passes, each writing its nibbles in place."""
    tiles = packed.shape[-1] * 2
    # [row tile, k tile, lane: (row, column), int32's bytes: (h, i1)], lowest byte first
    data = packed.contiguous().view(torch.uint8).view(
        n // 8, k // (16 * tiles), 8, 4, tiles // 2, 2, 2)
    source = data.permute(0, 2, 1, 4, 6, 3, 5)  # as [row, k: (tile, i1, column, h)]
    out = torch.empty(n, k, dtype=torch.uint8, device=packed.device)
    target = out.view(n // 8, 8, k // (16 * tiles), tiles // 2, 2, 2, 4, 2)  # i0 after i1
    torch.bitwise_and(source, 0xF, out=target[:, :, :, :, :, 0])
    torch.bitwise_right_shift(source, 4, out=target[:, :, :, :, :, 1])
    return out


def _int4_group(linear: nn.Linear) -> int:
    return CPU_GROUP if linear.weight.device.type == "cpu" else GROUP


def _takes_int4(linear: nn.Linear, group: int) -> bool:
    """The kernels take inputs in whole groups and outputs in sixteens."""
    return linear.in_features % group == 0 and linear.out_features % 16 == 0


def int4_fits(text) -> bool:
    """Whether the feed-forward layers of a language model's config (`text`) take int4 on a
    CPU: a dense feed-forward block (experts are not linear layers) with both sizes in whole
    groups."""
    if getattr(text, "num_experts", None) or getattr(text, "num_local_experts", None):
        return False
    hidden, inner = getattr(text, "hidden_size", None), getattr(text, "intermediate_size", None)
    if not isinstance(hidden, int) or not isinstance(inner, int):
        return False
    return hidden % CPU_GROUP == 0 and inner % CPU_GROUP == 0


KINDS = ("int8", "int4", "int4-mlp")
CPU_KINDS = ("int8", "int4-mlp")  # with int8 layers, whose kernel is fast on a CPU only
# the layers `int4-mlp` makes int4: transformers' names for the projections of a decoder
# layer's feed-forward block (not a mixture's router, which picks experts)
FEED_FORWARD = ("gate_proj", "up_proj", "down_proj", "gate_up_proj", "fc1", "fc2", "w1", "w2",
                "w3")


def quantize_weights(model: nn.Module, kind: str, keep_reference: bool = False) -> int:
    """Replace the language decoder's linear layers and the output head in place; returns how
    many were replaced.

    - int8 / int4: every one of them (but with int4 on a CPU the head is int8: every logit
      goes through it, and llama.cpp keeps it wider too; on the offline default it costs
      0.3 ms a token more than int4, against some 20 ms. GPUs keep it int4, torch's int8
      kernel being CPU-first);
    - int4-mlp: the feed-forward projections (FEED_FORWARD) int4 (one whose sizes int4
      cannot take stays int8), everything else and the head int8. On the offline default
      int4 attention moved the last hidden state by 24 % (the merged adapter's deltas do not
      survive 4 bits), int4 feed-forward layers by 0.6 %, int8 everywhere by 3.1 %.

    Only plain `nn.Linear` layers are replaced (a subclass has a forward of its own).
    `keep_reference` keeps int4's unpacked values for `dequantized()` (tests compare
    against it)."""
    if kind not in KINDS:
        raise BadSetting(f"weight-only quantization is one of {', '.join(KINDS)}; got {kind!r}")
    replaced = 0
    for parent in list(model.get_decoder().modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                four = kind == "int4" or (kind == "int4-mlp" and name in FEED_FORWARD
                                          and _takes_int4(child, _int4_group(child)))
                setattr(parent, name, _make(Int4Linear if four else Int8Linear, child,
                                            keep_reference))
                replaced += 1
    head = model.get_output_embeddings()
    if type(head) is nn.Linear:
        make = Int4Linear if kind == "int4" and head.weight.device.type != "cpu" else Int8Linear
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
