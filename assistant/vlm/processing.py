"""The composed model's processor: an image processor and the language model's tokenizer.

Each `<image>` in the text becomes `num_image_tokens` placeholder tokens (the model's
`image_seq_length`), which the model replaces with the bridge's image embeddings.
"""

from __future__ import annotations

from transformers import ProcessorMixin


class ComposedVLMProcessor(ProcessorMixin):
    def __init__(self, image_processor=None, tokenizer=None, num_image_tokens: int = 49,
                 image_token: str = "<image>", chat_template=None, **kwargs):
        self.num_image_tokens = num_image_tokens
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        return self.image_token * self.num_image_tokens
