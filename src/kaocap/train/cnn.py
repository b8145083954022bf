"""A MobileNetV3-small-class backbone in plain PyTorch (no torchvision here): inverted residual
blocks with depthwise convolutions, squeeze-and-excitation and hard-swish (Howard et al. 2019).

Input (N, 3, S, S) float32 RGB in 0..1 (S = 128 by default); output (N, C) pooled features:
a global average, or (``pool="gdconv"``) a global depthwise convolution that gives every cell of
the final S/32 x S/32 map its own learnt weight per channel (MobileFaceNet, Chen et al. 2018),
so the features keep where in the face they come from (an iris left or right of the eye).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: MobileNetV3-small's blocks: kernel, expansion channels, output channels, SE, hard-swish, stride.
#: At 128x128 input the final feature map is 4x4.
MOBILENETV3_SMALL: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
)
STEM_CHANNELS = 16
LAST_CHANNELS = 576
#: Inputs are normalised inside the network: (x - mean) / std, x in 0..1.
INPUT_MEAN, INPUT_STD = 0.5, 0.25


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10% (MobileNet rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None,
            padding: int | None = None) -> nn.Sequential:  # fmt: skip
    """Conv (no bias) + BatchNorm + optional activation; 'same' padding unless ``padding``."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if padding is None else padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 reduce (ReLU) -> 1x1 expand (hard-sigmoid) -> scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = make_divisible(channels / reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.act, self.gate = nn.ReLU(inplace=True), nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class InvertedResidual(nn.Module):
    """1x1 expand -> kxk depthwise (stride) -> SE -> 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, kernel: int, expand: int, cout: int, se: bool, hswish: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(conv_bn(cin, expand, 1, act=act(inplace=True)))
        layers.append(conv_bn(expand, expand, kernel, stride, groups=expand, act=act(inplace=True)))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(conv_bn(expand, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


@dataclass(frozen=True)
class BackboneConfig:
    """width: channel multiplier (1.0 = MobileNetV3-small). blocks: the block table. pool:
    "avg" or "gdconv" (needs ``image_size``, the input side in px)."""

    width: float = 1.0
    blocks: tuple[tuple[int, int, int, bool, bool, int], ...] = MOBILENETV3_SMALL
    pool: str = "avg"
    image_size: int = 128


class MobileNetV3Small(nn.Module):
    """(N, 3, S, S) RGB 0..1 -> (N, out_channels) globally pooled features."""

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        w = config.width
        cin = make_divisible(STEM_CHANNELS * w)
        layers: list[nn.Module] = [conv_bn(3, cin, 3, 2, act=nn.Hardswish(inplace=True))]
        for kernel, expand, cout, se, hswish, stride in config.blocks:
            cexp, cout = make_divisible(expand * w), make_divisible(cout * w)
            layers.append(InvertedResidual(cin, kernel, cexp, cout, se, hswish, stride))
            cin = cout
        self.out_channels = make_divisible(LAST_CHANNELS * w)
        layers.append(conv_bn(cin, self.out_channels, 1, act=nn.Hardswish(inplace=True)))
        self.features = nn.Sequential(*layers)
        if config.pool not in ("avg", "gdconv"):
            raise ValueError(f"pool must be 'avg' or 'gdconv', got {config.pool!r}")
        side = config.image_size  # of the final map: the stem and every block round up
        for stride in (2, *(block[-1] for block in config.blocks)):
            side = -(-side // stride)
        c = self.out_channels
        # One output cell: the unpadded kernel covers the whole map.
        self.gdconv = conv_bn(c, c, side, groups=c, padding=0) if config.pool == "gdconv" else None
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.features((image - INPUT_MEAN) / INPUT_STD)
        return x.mean(dim=(2, 3)) if self.gdconv is None else self.gdconv(x).flatten(1)
