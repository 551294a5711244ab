"""A recipe: everything needed to rebuild a trained composed model from its backbones.

Training writes `recipe.json` (backbones, bridge, LoRA, stages, data, seed) and
`bridge_adapter.safetensors` (the trained bridge, its feature statistics and the LoRA
weights: a few MB). `assemble` composes the backbones again, loads those weights and merges
LoRA into the language model, giving a plain checkpoint the engine loads like any other. The
embedded default ships as exactly these two files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.errors import BadSetting
from assistant.models import offline
from assistant.models.adapter import LoraPlan, add_lora, load_trainable_state, merge_lora

ADAPTER = "bridge_adapter.safetensors"
RECIPE = "recipe.json"


@dataclass
class StagePlan:
    stage: int  # 1: bridge only; 2: bridge + LoRA
    steps: int
    batch_size: int = 16
    lr: float = 1e-3
    warmup: float = 0.05  # fraction of steps with a linear warm-up, then cosine decay
    checkpoint_every: int = 50
    objective: str = "lm"  # "lm" (next-token loss) or "align" (stage 1 only: caption words)
    bridge_lr: float | None = None  # stage 2: the bridge's own rate (default: lr)
    negatives: int = 2048  # "align": sampled vocabulary entries to contrast against
    # "sample": each sample of a batch draws its kind; "kind": a whole batch is one kind, so
    # short samples (easy-VQA) are not padded to the length of long ones (agent turns).
    batch_by: str = "sample"
    # Matrix products in bfloat16 (weights and optimizer stay float32): some 2-3 times faster
    # on a CPU with AVX-512 BF16, and on GPUs.
    bf16: bool = False

    def __post_init__(self):
        if self.batch_by not in ("sample", "kind"):
            raise BadSetting(f"unknown batch_by {self.batch_by!r}: sample or kind")
        if self.objective not in ("lm", "align"):
            raise BadSetting(f"unknown objective {self.objective!r}: lm or align")
        if self.objective == "align" and self.stage != 1:
            raise BadSetting("the align objective trains the bridge alone: stage 1 only")

    @property
    def name(self) -> str:
        return f"stage{self.stage}-{self.objective}"


@dataclass
class Recipe:
    vision: str = offline.VISION
    text: str = offline.TEXT
    bridge: str = "mlp2x_gelu"
    image_grid: int = 3
    image_global_token: bool = True
    vision_feature_layer: int | None = None
    num_queries: int = 32
    qformer_layers: int = 2
    image_words: bool = False  # image tokens as mixtures of word embeddings (see the config)
    lora: LoraPlan = field(default_factory=LoraPlan)
    stages: list[StagePlan] = field(default_factory=list)
    data: dict[str, list[str]] = field(default_factory=dict)  # stage ("1", "2") -> sources
    mix: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> kind weights
    seed: int = 0
    quant: str = "none"  # "4bit": QLoRA (the language model in nf4 while training)

    @property
    def agent_prompt(self) -> str | None:
        """The agent prompt the model learns to call tools in: "compact" when any stage
        trains on agent chats (assistant/train/agent_data.py shows them so), else None."""
        specs = [spec for sources in self.data.values() for spec in sources]
        return "compact" if any(spec.split(":")[0] == "agent" for spec in specs) else None

    def compose_args(self) -> dict:
        return dict(bridge=self.bridge, image_grid=self.image_grid,
                    image_global_token=self.image_global_token,
                    vision_feature_layer=self.vision_feature_layer,
                    num_queries=self.num_queries, qformer_layers=self.qformer_layers,
                    image_words=self.image_words, seed=self.seed)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Recipe:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        raw["lora"] = LoraPlan(**raw.get("lora", {}))
        raw["stages"] = [StagePlan(**s) for s in raw.get("stages", [])]
        return cls(**raw)


def compose_from(recipe: Recipe, cache_dir: str | Path, training: bool = False,
                 device: str = "cpu"):
    """The recipe's backbones composed with a fresh bridge; quantized as the recipe says only
    for training (a rebuilt model is always full precision)."""
    from assistant.models.compose import compose

    quant = recipe.quant if training else "none"
    return compose(recipe.vision, recipe.text, cache_dir=cache_dir, quant=quant, device=device,
                   **recipe.compose_args())


def save_adapter(model, path: Path) -> None:
    from safetensors.torch import save_file

    from assistant.models.adapter import trainable_state

    save_file(trainable_state(model), str(path))


def assemble(recipe_dir: str | Path, cache_dir: str | Path):
    """(model, processor) rebuilt from `recipe_dir`'s recipe and adapter, LoRA merged."""
    from safetensors.torch import load_file

    recipe_dir = Path(recipe_dir)
    recipe = Recipe.load(recipe_dir / RECIPE)
    model, processor = compose_from(recipe, cache_dir)
    state = load_file(str(recipe_dir / ADAPTER))
    if any(k.startswith("language_model.") for k in state):
        add_lora(model.language_model, recipe.lora)
    load_trainable_state(model, state)
    merge_lora(model.language_model)
    if recipe.agent_prompt:  # the agent reads it off the checkpoint (`--agent-prompt auto`)
        model.config.agent_prompt = recipe.agent_prompt
    return model.eval(), processor
