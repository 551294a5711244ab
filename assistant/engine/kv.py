"""The engine's KV memory: the kept prefixes of earlier answers (reuse.PrefixCache) and, with
the compiled decode loop, the arena of buffers its caches view (arena.Arena). Every answer
gets its starting cache here and hands back what it filled; the rules between the two hold
here, in code:

- An answer starts from a copy lent of a kept prefix, never from the entry itself, so two
  answers never write into one cache.
- A kept cache that views the arena's buffers must be registered with its holders (the
  arena copies registered views out before writing over them): `keep` refuses one that is
  not, as a bug.
- When the arena lets go of its buffers (out of memory), the kept prefixes still viewing
  them are dropped, to give their memory back.
- Prefixes are kept only for models with a standard generate and inputs of the LLaVA kind;
  for others (BLIP-2's own generate, Qwen2-VL's image grids, which carry positions) no cache
  is given: generate makes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from assistant.engine.arena import Arena
from assistant.engine.reuse import PrefixCache, cache_length, tagged_ids

REUSABLE_INPUTS = frozenset({"input_ids", "attention_mask", "pixel_values", "image_sizes"})


@dataclass
class Start:
    """Where an answer starts: a cache holding the first `reused` prompt tokens (None: no
    cache of ours), and `keep(generated_ids)` to call once it ended well."""

    cache: object | None
    reused: int
    keep: Callable[[list[int]], None] | None


class KVManager:
    def __init__(self, model, entries: int, image_token_id: int | None,
                 reuse: bool = True, arena: bool = False):
        """`entries`: kept prefixes at most (0: none). `reuse`: False for models whose
        generate is not the standard one (no prefix is kept or lent). `arena`: give the
        compiled decode loop a set of buffers (`self.arena`)."""
        self.text_config = model.config.get_text_config()
        self.image_token_id = image_token_id
        self.reuse = reuse and entries > 0
        self.prefixes = PrefixCache(entries if reuse else 0)
        self.arena = Arena(self.text_config, model.get_input_embeddings().weight.dtype,
                           on_forget=self.prefixes.drop) if arena else None

    def key(self, inputs) -> list | None:
        """The prompt's tokens with its pictures tagged (reuse.tagged_ids), None when prefix
        reuse is off or unsafe for these inputs. Worked out on the host, before the inputs
        move to the device: the pictures' digests are remembered."""
        if not self.reuse or not set(inputs) <= REUSABLE_INPUTS:
            return None
        return tagged_ids(inputs["input_ids"], self.image_token_id, inputs.get("pixel_values"))

    def start(self, inputs: dict, key: list | None) -> Start:
        """The KV cache an answer to `inputs` starts from: a copy of the kept prefix it
        begins with, or an empty one. When the prefix holds every picture of the prompt, the
        image inputs are taken out of `inputs` (nothing reads them again)."""
        if key is None:
            return Start(None, 0, None)
        hit = self.prefixes.take(key)
        if hit is None:
            cache, reused = self._new_cache(), 0
        else:
            cache, reused = hit.cache, hit.length
            if hit.images_reused:
                for name in REUSABLE_INPUTS - {"input_ids", "attention_mask"}:
                    inputs.pop(name, None)
        return Start(cache, reused, lambda generated: self.keep(key + generated, cache))

    def keep(self, key: list, cache) -> None:
        """Keep `cache`, which holds the KV of `key[:its length]`, for the prompts that begin
        like it."""
        if self.arena is not None and self.arena.views(cache) and cache not in self.arena.holders:
            raise RuntimeError("a kept cache views the decode loop's buffers without being "
                               "registered with them: it would be written over")
        if cache_length(cache) > 0:
            self.prefixes.put(key, cache)

    def clear(self) -> None:
        self.prefixes.clear()

    def _new_cache(self):
        """An empty dynamic KV cache (the decode loop makes it view its own buffers)."""
        from transformers import DynamicCache

        return DynamicCache(config=self.text_config)
