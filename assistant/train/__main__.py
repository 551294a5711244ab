"""`python -m assistant.train --out DIR`: compose a model and train it in two stages.

Stage 1 trains only the bridge on captions; stage 2 trains the bridge and LoRA on the language
model on instructions. Run the same command again after an interruption to resume. The result
in DIR: recipe.json + bridge_adapter.safetensors (small; enough to rebuild the model) and
model/ (the whole checkpoint: `python app.py --model DIR/model`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from assistant.config import Settings
from assistant.errors import AssistantError, BadSetting
from assistant.models.adapter import LoraPlan, merge_lora
from assistant.models.offline import save_whole
from assistant.models.recipe import (
    ADAPTER,
    RECIPE,
    Recipe,
    StagePlan,
    assemble,
    compose_from,
    save_adapter,
)
from assistant.train.sources import load_source
from assistant.train.trainer import Trainer

DEFAULT = Recipe(
    image_words=True,
    lora=LoraPlan(r=8, alpha=16, targets=["q_proj", "k_proj", "v_proj", "o_proj"]),
    stages=[StagePlan(1, steps=600, batch_size=64, lr=1e-3, objective="align",
                      checkpoint_every=200),
            StagePlan(1, steps=0, batch_size=16, lr=1e-3, objective="lm"),
            StagePlan(2, steps=400, batch_size=16, lr=1.5e-3, bridge_lr=1e-4, batch_by="kind",
                      bf16=True)],
    data={"1": ["easy-vqa-captions", "synthetic-captions:200"],
          "2": ["easy-vqa", "synthetic-instructions:200", "agent:2400"]},
    mix={"2": {"yes/no": 4.0, "shape": 1.0, "color": 1.0, "synthetic": 0.3, "agent": 5.5}},
)


def parser() -> argparse.ArgumentParser:
    from assistant.train.sources import __doc__ as sources_doc

    p = argparse.ArgumentParser(
        prog="python -m assistant.train", description=__doc__.split("\n\n")[0],
        epilog=sources_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = DEFAULT
    p.add_argument("--out", required=True, help="output directory (resumes if it has a run)")
    p.add_argument("--vision", default=d.vision, help="vision encoder: %(default)s or a hub id/dir")
    p.add_argument("--text", default=d.text, help="language model: %(default)s or a hub id/dir")
    p.add_argument("--bridge", default=d.bridge, choices=["linear", "mlp2x_gelu", "qformer"])
    p.add_argument("--image-grid", type=int, default=d.image_grid,
                   help="pool the encoder grid to NxN image tokens (0: keep it)")
    p.add_argument("--feature-layer", type=int, default=d.vision_feature_layer)
    p.add_argument("--num-queries", type=int, default=d.num_queries, help="Q-Former queries")
    align, caption, instruct = d.stages
    p.add_argument("--stage1-data", nargs="+", default=d.data["1"])
    p.add_argument("--stage2-data", nargs="+", default=d.data["2"])
    p.add_argument("--align-steps", type=int, default=align.steps,
                   help="stage 1, caption-word alignment steps (cheap: no LM pass)")
    p.add_argument("--stage1-steps", type=int, default=caption.steps,
                   help="stage 1, caption next-token steps through the frozen LM")
    p.add_argument("--stage2-steps", type=int, default=instruct.steps,
                   help="stage 2, instruction steps (bridge + LoRA)")
    p.add_argument("--stage1-lr", type=float, default=align.lr)
    p.add_argument("--stage2-lr", type=float, default=instruct.lr, help="LoRA learning rate")
    p.add_argument("--stage2-bridge-lr", type=float, default=instruct.bridge_lr)
    p.add_argument("--stage2-batch-by", choices=["sample", "kind"], default=instruct.batch_by,
                   help="kind: each batch is one kind of data (short samples stay short)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=instruct.bf16,
                   help="stage 2 multiplies in bfloat16 (weights stay float32)")
    p.add_argument("--no-global-token", dest="global_token", action="store_false",
                   help="no whole-image token next to the pooled grid")
    p.add_argument("--image-words", action=argparse.BooleanOptionalAction, default=d.image_words,
                   help="image tokens as mixtures of the language model's word embeddings")
    p.add_argument("--mix", type=json.loads, default=d.mix["2"],
                   help='stage-2 weights per kind, JSON (default: %(default)s)')
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lora-r", type=int, default=d.lora.r)
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--image-root", default=None, help="images of LLaVA json files (default: "
                   "the json file's folder)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip and count bad records instead of stopping at the first")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--quant", choices=["none", "4bit", "8bit"], default="none",
                   help="QLoRA: train LoRA over a quantized language model (bitsandbytes)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def recipe_from(args) -> Recipe:
    every = args.checkpoint_every
    return Recipe(
        vision=args.vision, text=args.text, bridge=args.bridge, image_grid=args.image_grid,
        image_global_token=args.global_token, vision_feature_layer=args.feature_layer,
        num_queries=args.num_queries, image_words=args.image_words,
        lora=LoraPlan(r=args.lora_r, alpha=2 * args.lora_r, targets=DEFAULT.lora.targets),
        stages=[StagePlan(1, args.align_steps, 4 * args.batch_size, args.stage1_lr,
                          objective="align", checkpoint_every=every),
                StagePlan(1, args.stage1_steps, args.batch_size, args.stage1_lr,
                          checkpoint_every=every),
                StagePlan(2, args.stage2_steps, args.batch_size, args.stage2_lr,
                          checkpoint_every=every, bridge_lr=args.stage2_bridge_lr,
                          batch_by=args.stage2_batch_by, bf16=args.bf16)],
        data={"1": args.stage1_data, "2": args.stage2_data}, mix={"2": args.mix}, seed=args.seed,
        quant=args.quant)


def train(recipe: Recipe, out: Path, cache_dir: str, image_root=None, skip_bad=False,
          progress=True, device: str = "cpu") -> dict:
    """Run both stages (resuming), save the adapter and the merged model; a summary."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / RECIPE
    if saved.is_file() and Recipe.load(saved) != recipe:
        raise BadSetting(f"{out} holds a run of another recipe; use a new --out to start afresh")
    started = time.monotonic()
    plans = [p for p in recipe.stages if p.steps > 0]
    data = {}  # every source is read (and checked) before any training starts
    for plan in plans:
        if plan.stage in data:
            continue
        samples, skipped = [], 0
        for spec in recipe.data[str(plan.stage)]:
            loaded = load_source(spec, recipe.seed + plan.stage, image_root, skip_bad)
            samples += loaded.samples
            skipped += loaded.skipped
            for reason in loaded.reasons:
                print(f"skipped ({spec}) {reason}", file=sys.stderr)
        if not samples:
            raise ValueError(f"stage {plan.stage} has no usable samples")
        data[plan.stage] = samples, skipped
    recipe.save(saved)
    torch.manual_seed(recipe.seed)
    model, processor = compose_from(recipe, cache_dir, training=True, device=device)
    trainer = Trainer(model, processor, out, seed=recipe.seed, progress=progress, lora=recipe.lora)
    summary: dict = {"out": str(out), "stages": []}
    for plan in plans:
        samples, skipped = data[plan.stage]
        losses = trainer.run(plan, samples, recipe.mix.get(str(plan.stage)))
        head, tail = losses[: max(1, len(losses) // 10)], losses[-max(1, len(losses) // 10):]
        summary["stages"].append({
            "stage": plan.name, "samples": len(samples), "skipped": skipped,
            "steps": plan.steps, "loss_first": round(sum(head) / len(head), 4),
            "loss_last": round(sum(tail) / len(tail), 4)})
    save_adapter(model, out / ADAPTER)
    if recipe.quant == "none":
        merge_lora(model.language_model)
    else:  # merge into the full-precision weights, not the quantized ones
        model, processor = assemble(out, cache_dir)
    if recipe.agent_prompt:  # the agent reads it off the checkpoint (`--agent-prompt auto`)
        model.config.agent_prompt = recipe.agent_prompt
    save_whole(out / "model", model, processor)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from assistant.devices import resolve_device

    settings = Settings.from_env()
    try:
        summary = train(recipe_from(args), Path(args.out), settings.cache_dir, args.image_root,
                        args.skip_bad, progress=not args.quiet, device=resolve_device(args.device))
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
