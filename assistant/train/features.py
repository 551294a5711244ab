"""Frozen-encoder features, computed once per picture and kept for every step and epoch.

The vision encoder never trains, so each image is encoded once (batched, with progress) and
its features are reduced by the bridge right away (pooled grid, whole-image token): reducing
and the bridge's channel standardization commute, so reducing first changes nothing but the
memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from tqdm import tqdm

from assistant.train.data import Sample


class FeatureCache:
    def __init__(self, model, processor, batch_size: int = 32):
        self.model, self.processor, self.batch_size = model, processor, batch_size
        self.features: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def ensure(self, samples: list[Sample], progress: bool = True) -> None:
        """Encode every picture of `samples` not encoded yet."""
        todo: dict[str, Callable[[], Image.Image]] = {}
        for s in samples:
            for key, load in s.pictures():
                if key not in self.features:
                    todo.setdefault(key, load)
        if not todo:
            return
        device = next(self.model.bridge.parameters()).device
        keys = list(todo)
        bar = tqdm(total=len(keys), desc="Encoding images (frozen encoder)", unit="img",
                   disable=not progress)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start:start + self.batch_size]
            images = [todo[k]() for k in chunk]
            pixels = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
            features = self.model.vision_features(pixels.to(device))
            features = self.model.bridge.reduce(features).to("cpu", torch.float16)
            for k, f in zip(chunk, features, strict=True):
                self.features[k] = f
            bar.update(len(chunk))
        bar.close()

    def stack(self, keys: list[str]) -> torch.Tensor:
        return torch.stack([self.features[k].float() for k in keys])

    def all(self) -> torch.Tensor:
        return torch.stack([f.float() for f in self.features.values()])
