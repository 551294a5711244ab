"""Small causal language models and int4 layouts for the decode-kernel tests (CPU fused decode,
the CUDA int4 packing)."""

from __future__ import annotations

import torch

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=320, max_position_embeddings=256)


def causal_lm(model_type: str, dtype=torch.float32, **extra):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **{**SMALL, **extra})
    return AutoModelForCausalLM.from_config(config).to(dtype).eval()


def greedy(model, n: int = 16) -> list[int]:
    prompt = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 11]])
    with torch.inference_mode():
        out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=0)
    return out[0, prompt.shape[1]:].tolist()


def steps_taken(model) -> list:
    calls: list = []
    decoder = model.get_decoder().fused_decode
    original = decoder.step

    def counted(*args):
        calls.append(1)
        return original(*args)

    decoder.step = counted
    return calls


def cuda_layout(q: torch.Tensor, tiles: int) -> torch.Tensor:
    """torch's CUDA int4 packing (`_convert_weight_to_int4pack` on an NVIDIA GPU) of values
    `q` [n, k], written out from its kernel one lane at a time."""
    n, k = q.shape
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).tolist()  # a byte: input 2j high, 2j + 1 low
    out = torch.zeros(n // 8, k // (16 * tiles), 32, tiles // 2, dtype=torch.int64)
    for row_tile in range(n // 8):
        for k_tile in range(k // (16 * tiles)):
            for lane in range(32):
                row = pairs[row_tile * 8 + lane // 4]
                for inner in range(0, tiles, 2):
                    base = (k_tile * tiles + inner) * 8 + lane % 4
                    v = [row[base], row[base + 4], row[base + 8], row[base + 12]]
                    out[row_tile, k_tile, lane, inner // 2] = (
                        (v[3] & 0xF) << 28 | (v[2] & 0xF) << 24 | (v[1] & 0xF) << 20
                        | (v[0] & 0xF) << 16 | (v[3] & 0xF0) << 8 | (v[2] & 0xF0) << 4
                        | (v[1] & 0xF0) | (v[0] & 0xF0) >> 4)
    return (out - (out >= 2**31).long() * 2**32).to(torch.int32)


def values(n: int, k: int) -> torch.Tensor:
    return torch.randint(0, 16, (n, k), generator=torch.Generator().manual_seed(n + k),
                         dtype=torch.int32)
