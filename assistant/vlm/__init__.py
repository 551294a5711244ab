"""The composed vision-language model (LLaVA / MiniGPT-4 style): a frozen vision encoder, a
bridge (linear, MLP or Q-Former) and a causal language model, as one transformers checkpoint.

Importing this package registers the model with the Auto classes, so `AutoConfig`,
`AutoModelForImageTextToText` and `AutoProcessor` load a saved composed model like any other.
`compose` builds one from backbones; `assistant.train` trains its bridge (and LoRA).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
)

from assistant.vlm.configuration import ComposedVLMConfig, EfficientNetLiteConfig
from assistant.vlm.efficientnet_lite import EfficientNetLiteModel
from assistant.vlm.modeling import ComposedVLMForConditionalGeneration
from assistant.vlm.processing import ComposedVLMProcessor

AutoConfig.register(EfficientNetLiteConfig.model_type, EfficientNetLiteConfig, exist_ok=True)
AutoModel.register(EfficientNetLiteConfig, EfficientNetLiteModel, exist_ok=True)
AutoConfig.register(ComposedVLMConfig.model_type, ComposedVLMConfig, exist_ok=True)
AutoModelForImageTextToText.register(ComposedVLMConfig, ComposedVLMForConditionalGeneration,
                                     exist_ok=True)
AutoProcessor.register(ComposedVLMConfig, ComposedVLMProcessor, exist_ok=True)

__all__ = [
    "ComposedVLMConfig",
    "ComposedVLMForConditionalGeneration",
    "ComposedVLMProcessor",
    "EfficientNetLiteConfig",
    "EfficientNetLiteModel",
]
