"""The fused CPU decode step (assistant/engine/fused.py) gives the decoder's own answers, shares
the decoder's weights, and steps aside wherever it would not give the same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from assistant.engine import fused
from assistant.engine.weights import cpu_layout, quantize_weights
from tests.engine_calls import dialogue
from tests.kernels import SMALL, causal_lm, greedy, steps_taken


@pytest.mark.parametrize("model_type,dtype,extra", [
    ("llama", torch.float32, {}),
    ("llama", torch.bfloat16, {}),
    ("mistral", torch.float32, {"sliding_window": None}),
    ("qwen2", torch.float32, {}),  # q, k and v have biases
    ("qwen3", torch.float32, {"head_dim": 16}),  # each head normalised before rotary
])
def test_the_fused_step_gives_the_decoders_own_tokens(model_type, dtype, extra):
    plain = greedy(causal_lm(model_type, dtype, **extra))
    model = causal_lm(model_type, dtype, **extra)
    assert fused.install(model)
    calls = steps_taken(model)
    assert greedy(model) == plain
    assert len(calls) == 15  # every token after the first came from the fused step


def test_the_fused_step_gives_the_same_logits():
    model = causal_lm("llama")
    prompt = torch.tensor([[5, 17, 42, 99]])
    with torch.inference_mode():
        before = model(prompt, use_cache=True)
        after_plain = model(torch.tensor([[8]]), past_key_values=before.past_key_values).logits
        fused.install(model)
        again = model(prompt, use_cache=True)
        after_fused = model(torch.tensor([[8]]), past_key_values=again.past_key_values).logits
    torch.testing.assert_close(after_fused, after_plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["int8", "int4", "int4-mlp"])
@pytest.mark.parametrize("model_type,extra", [
    ("llama", {}), ("qwen2", {}), ("qwen3", {"head_dim": 16}),
    ("llama", {"num_key_value_heads": 4}),  # int4: k and v in whole 64-row blocks: stacked
    ("qwen3", {"head_dim": 16, "num_key_value_heads": 4}),
])
def test_quantized_layers_are_fused_too(model_type, extra, kind):
    model = causal_lm(model_type, **extra)
    quantize_weights(model, kind)
    plain = greedy(model)
    assert fused.install(model)
    calls = steps_taken(model)
    assert greedy(model) == plain and len(calls) == 15
    layer = model.get_decoder().fused_decode.layers[0]
    # int4 layouts stack in whole blocks of outputs (64 with AVX-512, 32 with AVX2)
    kv_size = 16 * extra.get("num_key_value_heads", SMALL["num_key_value_heads"])
    stacked = kind != "int4" or kv_size % cpu_layout()[0] == 0
    assert layer.gate_up.fused and layer.qkv.fused == stacked


def test_the_fused_weights_are_the_modules_own():
    model = causal_lm("llama")
    quantize_weights(model, "int8")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused.install(model)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    attn = model.get_decoder().layers[0].self_attn
    whole = model.get_decoder().fused_decode.layers[0].qkv.weight
    # q, k and v are views into the one fused tensor: no second copy of the weights
    assert attn.q_proj.weight_int8.untyped_storage().data_ptr() == \
        whole.untyped_storage().data_ptr()
    assert attn.v_proj.weight_int8.data_ptr() == whole[-attn.v_proj.out_features:].data_ptr()


def test_plain_weights_are_left_as_they_are():
    model = causal_lm("llama")
    attn = model.get_decoder().layers[0].self_attn
    weight, pointer = attn.q_proj.weight, attn.q_proj.weight.data_ptr()
    fused.install(model)
    assert attn.q_proj.weight is weight and weight.data_ptr() == pointer


def test_a_projection_replaced_later_is_used_not_the_fused_copy():
    model = causal_lm("llama")
    fused.install(model)
    calls = steps_taken(model)
    layer = model.get_decoder().layers[1].mlp
    replacement = nn.Linear(layer.up_proj.in_features, layer.up_proj.out_features, bias=False)
    nn.init.normal_(replacement.weight, std=0.5)
    layer.up_proj = replacement  # as a LoRA wrapper would be put in
    reference = causal_lm("llama")
    reference.get_decoder().layers[1].mlp.up_proj = replacement
    assert greedy(model) == greedy(reference)
    assert not calls


def test_a_weight_re_pointed_between_answers_is_used_not_the_fused_copy():
    model = causal_lm("llama")
    fused.install(model)
    greedy(model)  # answered once with the fused step, addresses checked
    calls = steps_taken(model)
    attn = model.get_decoder().layers[0].self_attn
    torch.manual_seed(1)
    new = torch.randn_like(attn.k_proj.weight)
    attn.k_proj.weight.data = new  # same Parameter, other storage: as some loaders do
    reference = causal_lm("llama")
    reference.get_decoder().layers[0].self_attn.k_proj.weight.data = new.clone()
    assert greedy(model) == greedy(reference)
    assert not calls


def test_batches_and_padding_go_through_the_decoders_own_forward():
    model = causal_lm("llama")
    reference = causal_lm("llama")
    fused.install(model)
    calls = steps_taken(model)
    prompt = torch.tensor([[0, 0, 5, 17, 42], [9, 8, 7, 6, 5]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.inference_mode():
        kwargs = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert torch.equal(model.generate(prompt, **kwargs), reference.generate(prompt, **kwargs))
        one = dict(kwargs, attention_mask=mask[:1])
        assert torch.equal(model.generate(prompt[:1], **one), reference.generate(prompt[:1], **one))
    assert not calls  # two rows, then a padded row: never the fused step


def test_hidden_states_asked_in_the_config_go_through_the_decoders_own_forward():
    model = causal_lm("llama")
    fused.install(model)
    calls = steps_taken(model)
    model.config.output_hidden_states = True
    model.get_decoder().config.output_hidden_states = True
    greedy(model, n=4)
    assert not calls


def test_auto_quant_is_int4_mlp_on_a_cpu_for_decoder_only_models():
    from transformers import AutoConfig

    from assistant.engine.quant import resolve_quant

    llama = AutoConfig.for_model("llama", **SMALL)
    odd = AutoConfig.for_model("llama", **{**SMALL, "hidden_size": 48})  # 48: not in 32s
    t5 = AutoConfig.for_model("t5", d_model=32, num_layers=1, num_heads=2, d_ff=64)
    assert resolve_quant("auto", "cpu", llama) == "int4-mlp"
    assert resolve_quant("auto", "cpu", odd) == "int8"
    assert resolve_quant("auto", "cuda", llama) == "none"
    assert resolve_quant("auto", "cpu", t5) == "none"  # T5's layers read their weights' dtype
    assert resolve_quant("int4", "cpu", t5) == "int4"


def test_gradients_go_through_the_decoders_own_forward():
    model = causal_lm("llama")
    fused.install(model)
    calls = steps_taken(model)
    with torch.no_grad():
        cache = model(torch.tensor([[5, 17, 42]]), use_cache=True).past_key_values
    out = model(torch.tensor([[8]]), past_key_values=cache)
    out.logits.sum().backward()
    assert not calls
    assert model.get_decoder().layers[0].self_attn.q_proj.weight.grad is not None


def test_decoders_it_does_not_fit_are_left_alone():
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=2, vocab_size=100)
    model = AutoModelForCausalLM.from_config(config)
    assert "not one of" in fused.supported(model)
    forward = model.get_decoder().forward
    assert not fused.install(model)
    assert model.get_decoder().forward == forward


def test_the_fused_int4_weights_are_the_modules_own():
    model = causal_lm("llama", num_key_value_heads=4)
    quantize_weights(model, "int4")
    xs = [torch.randn(rows, SMALL["hidden_size"]) for rows in (3, 70)]  # 70: widened
    attn = model.get_decoder().layers[0].self_attn
    projections = (attn.q_proj, attn.k_proj, attn.v_proj)
    before = [[p(x) for p in projections] for x in xs]
    fused.install(model)
    qkv = model.get_decoder().fused_decode.layers[0].qkv
    assert attn.k_proj.packed.data_ptr() == qkv.weight[SMALL["hidden_size"]:].data_ptr()
    # the kernel reads scales as laid out: the modules keep theirs, the fused step a copy
    assert all(p.scales_zeros.is_contiguous() for p in projections)
    assert torch.equal(qkv.scales_zeros, torch.cat([p.scales_zeros for p in projections], 1))
    after = [[p(x) for p in projections] for x in xs]
    assert all(torch.equal(a, b) for x, y in zip(before, after, strict=True)
               for a, b in zip(x, y, strict=True))
    torch.testing.assert_close(torch.cat(after[0], -1), qkv.whole(xs[0]))


def test_int4_scales_written_to_are_copied_again():
    def scaled(model):
        for layer in model.get_decoder().layers:
            with torch.no_grad():  # in place: the fused step's copy is stale
                layer.mlp.up_proj.scales_zeros[..., 0].mul_(-1.5)

    model, plain = causal_lm("llama"), causal_lm("llama")
    quantize_weights(model, "int4")
    quantize_weights(plain, "int4")
    fused.install(model)
    calls = steps_taken(model)
    first = greedy(model)
    scaled(model)
    scaled(plain)
    changed = greedy(model)
    assert len(calls) == 30  # both answers through the fused step
    assert changed == greedy(plain) and changed != first


@pytest.mark.parametrize("family", ["llava", "llava_next"])
def test_engine_answers_alike_with_and_without_the_fused_step(engines, family, red, blue):
    plain, _ = dialogue(engines(family, fused_decode=False), [red], new_image=blue)
    engine = engines(family)
    calls = steps_taken(engine.loaded.model)
    fast, _ = dialogue(engine, [red], new_image=blue)
    assert fast == plain
    assert len(calls) >= 3 * 7  # three turns of 8 tokens, all but the first of each fused


LAYOUT_CHECK = """
import torch
from torch import nn
from assistant.engine import fused
from assistant.engine.weights import Int4Linear, cpu_layout, packed_int4, quantize_weights
from tests.kernels import causal_lm, greedy, steps_taken

torch.manual_seed(0)
layer = Int4Linear(nn.Linear(96, 128))
assert layer.unpacks, cpu_layout()
x = torch.randn(70, 96)
kernel = packed_int4(x, layer.packed, layer.group, layer.scales_zeros, layer.bias)
assert (layer(x) - kernel).abs().max() <= 0.02 * kernel.abs().max()  # widened
model = causal_lm("llama", num_key_value_heads=4)
quantize_weights(model, "int4")
plain = greedy(model)
fused.install(model)
calls = steps_taken(model)
assert model.get_decoder().fused_decode.layers[0].qkv.fused
assert greedy(model) == plain and len(calls) == 15
print(torch.backends.cpu.get_cpu_capability(), cpu_layout())
"""


@pytest.mark.integration  # a child process per instruction set
@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_int4_reads_back_and_stacks_with_other_instruction_sets(capability):
    """torch packs int4 for the instruction set it runs with; the layout is found, not
    assumed (this machine may have AVX-512, others not)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    child = subprocess.run([sys.executable, "-c", LAYOUT_CHECK], env=env, capture_output=True,
                           text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split()[0] == capability.upper()
