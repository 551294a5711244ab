"""int4 on a GPU reads tinygemm's CUDA layout back, to widen its weight for a prompt's many
rows (assistant/engine/weights.py). Checked here against the packing written out from
torch's CUDA kernel; tests/test_gpu.py checks that reference against the kernel itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from assistant.engine import weights
from assistant.engine.weights import Int4Linear, _unpack_int4_cuda
from tests.kernels import cuda_layout, values


@pytest.mark.parametrize("tiles", [2, 4, 8])
@pytest.mark.parametrize("n,k", [(16, 128), (24, 256)])
def test_the_cuda_layout_reads_back(tiles, n, k):
    q = values(n, k)
    assert torch.equal(_unpack_int4_cuda(cuda_layout(q, tiles), n, k), q.to(torch.uint8))


def test_a_wrong_layout_does_not_read_back():
    q = values(16, 128)
    packed = cuda_layout(q, 4)
    assert not torch.equal(_unpack_int4_cuda(packed.transpose(0, 1).contiguous().view(
        packed.shape), 16, 128), q.to(torch.uint8))


def test_the_widened_cuda_weight_is_the_dequantized_weight(monkeypatch):
    """The GPU's in-place widening (on this CPU, from the reference packing) gives the
    weight dequantized in float32 and rounded once, up to a bfloat16 step."""
    torch.manual_seed(0)
    layer = Int4Linear(nn.Linear(256, 32), group=64)
    reference = layer.dequantized(torch.float32)
    layer.packed = cuda_layout(layer.values(), 8)
    layer._cpu, layer.unpacks = False, True  # as on a GPU, whose layout reads back
    monkeypatch.setattr(weights, "CUDA_WIDEN_ROWS", 4)
    widened = layer.widened()
    assert widened.dtype == torch.bfloat16 and widened.shape == (32, 256)
    step = reference.abs().clamp(min=1e-3) / 128  # bfloat16 keeps 8 bits
    assert ((widened.float() - reference).abs() <= step).all()
    x = torch.randn(6, 256)
    assert torch.allclose(layer(x), x @ reference.t() + layer.bias, rtol=2e-2, atol=2e-2)
