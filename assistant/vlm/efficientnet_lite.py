"""EfficientNet-Lite as a transformers model: the offline tier's frozen vision encoder.

Lite variants drop squeeze-excitation, use ReLU6 and keep the stem and head fixed. Convolutions
pad like TensorFlow's "SAME" (more on the bottom/right for stride 2), as the ImageNet weights
were trained that way. `import_state_dict` maps the original checkpoint's names onto ours.

Hidden states are token sequences [batch, height * width, channels]: 0 is the stem, 1..7 the
stages, the last the 1280-channel head; `pooler_output` is the global average of the head, and
`logits` the ImageNet classifier's when the config keeps it (`num_labels=1000`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from assistant.vlm.configuration import EfficientNetLiteConfig


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(input / stride). With stride 1
    and an odd kernel that is plain symmetric padding, done inside the convolution."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, **kwargs):
        self.symmetric = stride == 1 and k % 2 == 1
        super().__init__(cin, cout, k, stride, padding=k // 2 if self.symmetric else 0, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return super().forward(x)
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size),
                              reversed(self.stride), strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def conv_bn(cin: int, cout: int, k: int, stride: int, groups: int, eps: float) -> list[nn.Module]:
    return [SameConv(cin, cout, k, stride, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=eps)]


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; skip when shapes match."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, eps: float):
        super().__init__()
        mid = cin * expand
        self.expand_conv = None
        if expand != 1:
            self.expand_conv, self.bn0 = conv_bn(cin, mid, 1, 1, 1, eps)
        self.depthwise_conv, self.bn1 = conv_bn(mid, mid, k, stride, mid, eps)
        self.project_conv, self.bn2 = conv_bn(mid, cout, 1, 1, 1, eps)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand_conv is not None:
            h = F.relu6(self.bn0(self.expand_conv(h)), inplace=True)
        h = F.relu6(self.bn1(self.depthwise_conv(h)), inplace=True)
        h = self.bn2(self.project_conv(h))
        return h + x if self.skip else h


@dataclass
class EfficientNetLiteOutput(BaseModelOutputWithPooling):
    logits: torch.Tensor | None = None


class EfficientNetLiteModel(PreTrainedModel):
    config: EfficientNetLiteConfig
    config_class = EfficientNetLiteConfig
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    base_model_prefix = "efficientnet_lite"

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        eps = config.batch_norm_eps
        self.conv_stem, self.bn0 = conv_bn(config.num_channels, config.stem_channels, 3, 2, 1, eps)
        self.stages = nn.ModuleList()
        for repeats, k, stride, expand, cin, cout in config.stages:
            blocks = [MBConv(cin, cout, k, stride, expand, eps)]
            blocks += [MBConv(cout, cout, k, 1, expand, eps) for _ in range(repeats - 1)]
            self.stages.append(nn.Sequential(*blocks))
        last = config.stages[-1][5]
        self.conv_head, self.bn1 = conv_bn(last, config.hidden_size, 1, 1, 1, eps)
        self.fc = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels else None
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False,
                return_dict: bool = True, **kwargs) -> EfficientNetLiteOutput:
        # Channels-last runs the depthwise convolutions about 1.5x faster on CPU.
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        x = F.relu6(self.bn0(self.conv_stem(pixel_values)), inplace=True)
        maps = [x]
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        x = F.relu6(self.bn1(self.conv_head(x)), inplace=True)
        maps.append(x)
        pooled = x.mean(dim=(2, 3))
        tokens = [m.flatten(2).transpose(1, 2) for m in maps] if output_hidden_states else None
        return EfficientNetLiteOutput(
            last_hidden_state=x.flatten(2).transpose(1, 2),
            pooler_output=pooled,
            hidden_states=tuple(tokens) if tokens else None,
            logits=self.fc(pooled) if self.fc is not None else None,
        )


def import_state_dict(original: dict[str, torch.Tensor], config: EfficientNetLiteConfig,
                      ) -> dict[str, torch.Tensor]:
    """The original checkpoint (`_blocks.N._expand_conv.weight`, flat block numbering) renamed
    to this model's (`stages.S.B.expand_conv.weight`)."""
    where = [(s, b) for s, stage in enumerate(config.stages) for b in range(stage[0])]
    out = {}
    for name, tensor in original.items():
        parts = [p.lstrip("_") for p in name.split(".")]
        if parts[0] == "blocks":
            s, b = where[int(parts[1])]
            parts = ["stages", str(s), str(b)] + parts[2:]
        if parts[0] == "fc" and not config.num_labels:
            continue
        out[".".join(parts)] = tensor
    return out
