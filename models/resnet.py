"""ResNet backbone (stem + four stages) returning the layer2 and layer4 maps."""

from __future__ import annotations

from torch import Tensor, nn

from models.config import ModelConfig


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(c_in, width, 3, stride), nn.ReLU(inplace=True), *_conv_bn(width, c_out, 3)
        )
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided), 1×1 expand ×4, with a residual connection."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(c_in, width, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, c_out, 1),
        )
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _zero_last_bn(block: nn.Module) -> None:
    """Start each residual branch at zero so the untrained network is close to identity."""
    body = block.body
    assert isinstance(body, nn.Sequential)
    last = body[-1]
    if isinstance(last, nn.BatchNorm2d):
        nn.init.zeros_(last.weight)


class ResNetBackbone(nn.Module):
    """Stem + four residual stages; ``forward`` returns ``(x2, x4)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        block = Bottleneck if config.block == "bottleneck" else BasicBlock
        stem: list[nn.Module] = [
            *_conv_bn(config.in_channels, config.stem_width, config.stem_kernel, 2),
            nn.ReLU(inplace=True),
        ]
        if config.stem_maxpool:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        c_in = config.stem_width
        stages: list[nn.Module] = []
        for index, (depth, width) in enumerate(
            zip(config.layers, config.stage_widths, strict=True)
        ):
            blocks: list[nn.Module] = []
            for position in range(depth):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(block(c_in, width, stride))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, BasicBlock | Bottleneck):
                _zero_last_bn(module)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x2 = self.layer2(self.layer1(self.stem(x)))
        x4 = self.layer4(self.layer3(x2))
        return x2, x4
