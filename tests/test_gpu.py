"""What only a CUDA GPU can check (skipped without one; bench/gpu.sh runs these first on a
GPU): torch's int4 kernel and its packing on CUDA (read back to widen for many rows), and
the compiled decode loop with CUDA graphs, answering as generate does with three compiles and
no graph left out of CUDA graphs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from assistant.config import Settings
from assistant.engine import Engine
from assistant.engine.weights import Int4Linear, packed_int4, reference_linear
from bench.generation import compile_counts
from tests.engine_calls import answers_alike, asking
from tests.kernels import cuda_layout, values

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("rows", [1, 16, 600])  # 600: widened to bfloat16 (CUDA_WIDEN_ROWS)
def test_int4_on_cuda_computes_its_dequantized_weight(rows):
    torch.manual_seed(0)
    linear = nn.Linear(512, 1024, bias=True).to("cuda", torch.bfloat16)
    layer = Int4Linear(linear)
    assert layer.unpacks  # the CUDA layout read back
    x = torch.randn(rows, 512, device="cuda", dtype=torch.bfloat16)
    out, ref = layer(x).float(), reference_linear(layer, x)
    assert out.shape == (rows, 1024)
    assert ((out - ref).norm() / ref.norm()).item() < 1e-2
    packed = packed_int4(x, layer.packed, layer.group, layer.scales_zeros, layer.bias).float()
    assert ((out - packed).norm() / packed.norm()).item() < 1e-2  # widened or not, alike


def test_int4_on_cuda_takes_the_last_position_of_each_row_of_a_batch():
    """What a batched step hands the output layer: a strided view, not a contiguous matrix."""
    torch.manual_seed(0)
    layer = Int4Linear(nn.Linear(512, 1024, bias=False).to("cuda", torch.bfloat16))
    hidden = torch.randn(4, 7, 512, device="cuda", dtype=torch.bfloat16)
    last = hidden[:, -1:, :]
    assert not last.reshape(-1, 512).is_contiguous()
    out = layer(last).float()
    assert out.shape == (4, 1, 1024)
    assert torch.allclose(out, layer(last.contiguous()).float())


@pytest.mark.parametrize("tiles", [2, 4, 8])
def test_the_cuda_packing_is_the_one_read_back(tiles):
    """tests/test_int4_layout.py's packing, written out from torch's kernel, is the kernel's."""
    q = values(64, 512)
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8).cuda()
    packed = torch._convert_weight_to_int4pack(pairs.contiguous(), tiles)
    assert torch.equal(packed.cpu(), cuda_layout(q, tiles))


def _since(before: dict) -> dict:
    return {k: v - before[k] for k, v in compile_counts().items()}


def test_the_compiled_loop_on_cuda_answers_as_generate_in_cuda_graphs(tiny_dirs, red, blue):
    plain = Engine.load(Settings(device="cuda", dtype="float32", prefix_cache=0, image_cache=0,
                                 batch=1).engine, tiny_dirs["llava"])
    engine = Engine(plain.loaded, Settings(device="cuda", dtype="float32", compile=True,
                                           prefix_cache=4, image_cache=0, batch=8).engine)
    before = compile_counts()
    answers_alike(plain, engine, red, blue)
    assert _since(before) == {"graphs": 3, "graph_breaks": 0, "cudagraph_skips": 0}


def test_int4_weights_in_the_compiled_loop_on_cuda(tiny_dirs, red):
    """bfloat16 int4 through the compiled loop: the same first tokens as generate on the
    same weights (later ones may part on a near tie: compiled kernels round differently),
    forced lengths kept, CUDA graphs used."""
    plain = Engine.load(Settings(device="cuda", dtype="bfloat16", quant="int4", prefix_cache=0,
                                 image_cache=0, batch=1).engine, tiny_dirs["llava"])
    engine = Engine(plain.loaded, Settings(device="cuda", dtype="bfloat16", quant="int4",
                                           compile=True, prefix_cache=0, image_cache=0).engine)
    before = compile_counts()
    params = plain.default_params(max_new_tokens=40, min_new_tokens=40)
    want = plain.stream(asking(red), params).stream
    got = engine.stream(asking(red), params).stream
    want.wait(), got.wait()
    assert got.generated[:4] == want.generated[:4]
    assert got.usage.completion_tokens == 40 and engine.scheduler.decoder.answers == 1
    assert _since(before)["cudagraph_skips"] == 0
