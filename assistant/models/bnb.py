"""bitsandbytes 8-bit and 4-bit configurations: what the engine loads a quantized checkpoint
with (engine/quant.py picks the modules kept in full precision) and what QLoRA training loads
a language model with."""

from __future__ import annotations

import importlib.util
import logging

import torch

from assistant.errors import BadSetting, MissingDependency


def require_bitsandbytes(quant: str) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependency("bitsandbytes", f"{quant} quantization", "gpu")
    # 8-bit matmuls log a warning per call (input casts); keep the console readable.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def bnb_config(quant: str, skip: list[str], compute_dtype: torch.dtype):
    """BitsAndBytesConfig for "8bit" or "4bit" (nf4, double quantization), `skip` kept in
    full precision; also what QLoRA training loads a language model with."""
    if quant not in ("8bit", "4bit"):
        raise BadSetting(f"bitsandbytes quantization is 8bit or 4bit; got {quant!r}")
    require_bitsandbytes(quant)
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=skip,
    )
