"""The two training stages, with checkpoints, resume and a fixed seed.

- Stage 1 (alignment): only the bridge trains, on captions; the encoder and language model
  are frozen. Two objectives, run in the order the recipe lists them:
  - "align": each content word of the caption must be the nearest word embedding (in the
    frozen language model's own table, against sampled negatives) of at least one image
    token. No language-model pass, so it costs milliseconds a step: it puts the image tokens
    where the language model already reads words ("red", "circle") before any slow step.
  - "lm": the usual next-token loss on the caption through the frozen language model.
- Stage 2 (instruction tuning): the bridge plus LoRA adapters on the language model, next-token
  loss on the answers.

Every `checkpoint_every` steps the trainable weights, optimizer, schedule, sampler state and
losses go to `<out>/stage<N>.pt` (written to a temporary file, then renamed), so an
interrupted run started again with the same command continues where it stopped and ends with
the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from assistant.errors import BadSetting
from assistant.models.adapter import LoraPlan, add_lora, load_trainable_state, trainable_state
from assistant.models.recipe import StagePlan
from assistant.train.data import Sample
from assistant.train.encode import IGNORE, Encoder, collate
from assistant.train.features import FeatureCache

STOPWORDS = frozenset(
    "a an the and or of in on at to is are was were it its this that there these those with "
    "for from by as be has have which what who image picture photo shows shown".split())


class MixSampler:
    """Batches drawn by kind weights (e.g. yes/no against colour questions), then uniformly
    over the kind's strata, then uniformly within one; its state is saved with the
    checkpoint.

    A batch of one kind (`by="kind"`) of a kind without strata (the agent's chats, whose
    lengths vary fourfold) is drawn from one of `BUCKETS` length buckets, picked in
    proportion to its size: every sample stays as likely as before, and a batch is padded
    to a length near its samples' own."""

    BUCKETS = 4

    def __init__(self, samples: list[Sample], mix: dict[str, float] | None, seed: int):
        by_kind: dict[str, dict[str, list[int]]] = {}
        for i, s in enumerate(samples):
            by_kind.setdefault(s.kind, {}).setdefault(s.stratum, []).append(i)
        kinds = sorted(by_kind)
        weights = [float((mix or {}).get(k, 1.0)) for k in kinds]  # unnamed kinds: 1
        if not any(weights):
            raise BadSetting(f"the mix {mix} gives no weight to any kind present: {kinds}")
        self.kinds, self.weights = kinds, weights
        self.strata = {k: [strata[s] for s in sorted(strata)] for k, strata in by_kind.items()}
        self.buckets = {}
        for kind, strata in by_kind.items():
            if list(strata) == [""]:
                ranked = sorted(strata[""], key=lambda i: sum(len(t) for _, t in
                                                             samples[i].turns))
                n = min(self.BUCKETS, len(ranked))
                self.buckets[kind] = [ranked[len(ranked) * b // n:len(ranked) * (b + 1) // n]
                                      for b in range(n)]
        self.rng = random.Random(seed)

    def batch(self, size: int, by: str = "sample") -> list[int]:
        if by == "kind":
            kind = self.rng.choices(self.kinds, self.weights, k=1)[0]
            if kind in self.buckets:
                buckets = self.buckets[kind]
                bucket = self.rng.choices(buckets, [len(b) for b in buckets], k=1)[0]
                return [self.rng.choice(bucket) for _ in range(size)]
            kinds = [kind] * size
        else:
            kinds = self.rng.choices(self.kinds, self.weights, k=size)
        return [self.rng.choice(self.rng.choice(self.strata[k])) for k in kinds]


def answer_loss(model, batch: dict[str, torch.Tensor], image_embeds: torch.Tensor) -> torch.Tensor:
    """Next-token loss on the labelled (answer) tokens. The same value as the model's own loss,
    but the vocabulary projection runs on those positions only: for a small model that
    projection over every position is a fifth of a training step."""
    lm = model.language_model
    embeds = model.embed(batch["input_ids"], image_embeds)
    hidden = lm.get_decoder()(inputs_embeds=embeds,
                              attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def lr_factor(step: int, plan: StagePlan) -> float:
    warm = max(1, int(plan.warmup * plan.steps))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, plan.steps - warm)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    def __init__(self, model, processor, out_dir: str | Path, seed: int = 0,
                 progress: bool = True, lora: LoraPlan | None = None):
        self.model, self.processor = model, processor
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.seed, self.progress = seed, progress
        self.lora = lora or LoraPlan()
        self.features = FeatureCache(model, processor)
        config = model.config
        self.encoder = Encoder(processor, config.image_token_id, config.image_seq_length)
        self.pad_id = processor.tokenizer.pad_token_id or 0
        self._encoded: dict[int, object] = {}
        self._words: dict[int, list[int]] = {}
        self._stats_measured = False

    def checkpoint_path(self, plan: StagePlan) -> Path:
        return self.out / f"{plan.name}.pt"

    def run(self, plan: StagePlan, samples: list[Sample], mix: dict[str, float] | None = None,
            ) -> list[float]:
        """Train one stage; returns the loss of every step (resumed ones included)."""
        model = self.model
        torch.manual_seed(self.seed + plan.stage)
        if plan.stage == 2 and not any("lora_" in n for n, _ in model.named_parameters()):
            add_lora(model.language_model, self.lora)
        self.features.ensure(samples, self.progress)
        params = self._trainable(plan.stage)
        bridge = [p for p in model.bridge.parameters() if p.requires_grad]
        groups = [{"params": bridge, "lr": plan.bridge_lr or plan.lr}]
        others = [p for p in params if all(p is not b for b in bridge)]
        if others:
            groups.append({"params": others, "lr": plan.lr})
        optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, plan))
        sampler = MixSampler(samples, mix, self.seed + plan.stage)
        step, losses = 0, []
        path = self.checkpoint_path(plan)
        if path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=False)
            load_trainable_state(model, saved["trainable"])
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            sampler.rng.setstate(saved["sampler"])
            torch.set_rng_state(saved["torch_rng"])
            step, losses = saved["step"], saved["losses"]
        elif plan.stage == 1 and not self._stats_measured:
            model.bridge.set_feature_stats(self.features.all())
        self._stats_measured = True
        log = (self.out / "train_log.jsonl").open("a")
        bar = tqdm(total=plan.steps, initial=step, desc=f"Stage {plan.stage} ({plan.objective})",
                   unit="step", disable=not self.progress)
        model.language_model.train()
        started = time.monotonic()
        while step < plan.steps:
            indices = sampler.batch(plan.batch_size, plan.batch_by)
            device = next(model.bridge.parameters()).device.type
            with torch.autocast(device, dtype=torch.bfloat16, enabled=plan.bf16):
                if plan.objective == "align":
                    loss = self._align_step(indices, samples, plan.negatives, step)
                else:
                    loss = self._step(indices, samples)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            step += 1
            losses.append(loss.item())
            recent = losses[-20:]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
            bar.update()
            log.write(json.dumps({"stage": plan.name, "step": step, "loss": round(losses[-1], 4),
                                  "lr": schedule.get_last_lr()[0],
                                  "seconds": round(time.monotonic() - started, 1)}) + "\n")
            if step % plan.checkpoint_every == 0 or step == plan.steps:
                self._save(path, step, losses, optimizer, schedule, sampler)
        bar.close()
        log.close()
        model.language_model.eval()
        return losses

    def _trainable(self, stage: int) -> list[torch.nn.Parameter]:
        model = self.model
        model.requires_grad_(False)
        model.bridge.requires_grad_(True)
        if stage == 2:
            for name, p in model.language_model.named_parameters():
                if "lora_" in name:
                    p.requires_grad_(True)
        return [p for p in model.parameters() if p.requires_grad]

    def _step(self, indices: list[int], samples: list[Sample]) -> torch.Tensor:
        items = []
        for i in indices:
            if i not in self._encoded:
                self._encoded[i] = self.encoder(samples[i])
            items.append(self._encoded[i])
        device = next(self.model.bridge.parameters()).device
        batch = {k: v.to(device) for k, v in collate(items, self.pad_id).items()}
        keys = [key for i in indices for key, _ in samples[i].pictures()]
        image_embeds = None
        if keys:  # in batch order, as their placeholders come
            features = self.features.stack(keys).to(device)
            image_embeds = self.model.project(features, reduced=True)
        return answer_loss(self.model, batch, image_embeds)

    def caption_words(self, sample: Sample) -> list[int]:
        """Token ids (first piece of " word") of the content words of the sample's answers."""
        tokenizer = self.processor.tokenizer
        words = []
        for role, text in sample.turns:
            if role == "assistant":
                words += [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOPWORDS]
        ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0]
               for w in dict.fromkeys(words)]
        return list(dict.fromkeys(ids))

    def _align_step(self, indices: list[int], samples: list[Sample], negatives: int,
                    step: int) -> torch.Tensor:
        """Each caption word must be some image token's nearest word (multiple-instance
        contrastive loss over the target words and sampled negatives)."""
        for i in indices:
            if i not in self._words:
                self._words[i] = self.caption_words(samples[i])
        table = self.model.get_input_embeddings().weight
        device = table.device
        targets = sorted({t for i in indices for t in self._words[i]})
        if not targets:
            raise BadSetting("the align objective needs captions with content words")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        sampled = torch.randperm(table.shape[0], generator=generator)[:negatives].tolist()
        candidates = targets + sorted(set(sampled) - set(targets))
        column = {t: c for c, t in enumerate(targets)}
        features = self.features.stack([samples[i].image_key for i in indices]).to(device)
        tokens = self.model.bridge(features, reduced=True)  # [batch, n, dim]
        logp = (tokens @ table[candidates].to(tokens.dtype).T).log_softmax(-1)
        losses = []
        for row, i in enumerate(indices):
            cols = [column[t] for t in self._words[i]]
            if cols:  # the best image token for each word
                losses.append(-torch.logsumexp(logp[row][:, cols], dim=0))
        return torch.cat(losses).mean()

    def _save(self, path: Path, step, losses, optimizer, schedule, sampler) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save({"step": step, "losses": losses, "trainable": trainable_state(self.model),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                    "sampler": sampler.rng.getstate(), "torch_rng": torch.get_rng_state(),
                    "lora": asdict(self.lora)}, tmp)
        tmp.replace(path)
