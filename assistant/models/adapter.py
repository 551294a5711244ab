"""The trained part of a composed model: the bridge and LoRA adapters on the language model.

`add_lora` puts adapters in (QLoRA-ready on a quantized model), `trainable_state` and
`load_trainable_state` save and restore what training changed, and `merge_lora` folds the
adapters into the base weights so that the result is a plain checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class LoraPlan:
    r: int = 8
    alpha: int = 16
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


def add_lora(language_model, plan: LoraPlan) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    if getattr(language_model, "is_quantized", False):  # QLoRA: norms in fp32, input grads
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(language_model, use_gradient_checkpointing=False)
    config = LoraConfig(r=plan.r, lora_alpha=plan.alpha, lora_dropout=0.0,
                        target_modules=list(plan.targets), bias="none")
    inject_adapter_in_model(config, language_model)


def merge_lora(language_model) -> None:
    """Fold LoRA into the base weights and put the plain layers back."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(language_model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = language_model.get_submodule(parent_name) if parent_name else language_model
            setattr(parent, child, module.get_base_layer())


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What training changes: the bridge (with its feature statistics) and LoRA weights."""
    state = {f"bridge.{k}": v for k, v in model.bridge.state_dict().items()}
    for name, p in model.language_model.named_parameters():
        if "lora_" in name:
            state[f"language_model.{name}"] = p.detach()
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    bridge = {k.removeprefix("bridge."): v for k, v in state.items() if k.startswith("bridge.")}
    model.bridge.load_state_dict(bridge)
    lora = {k.removeprefix("language_model."): v for k, v in state.items()
            if k.startswith("language_model.")}
    if lora:
        missing = set(lora) - {n for n, _ in model.language_model.named_parameters()}
        if missing:
            raise ValueError(f"adapter weights with no LoRA layer to go to: {sorted(missing)[:3]}")
        model.language_model.load_state_dict(lora, strict=False)
