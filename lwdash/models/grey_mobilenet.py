"""torchvision's MobileNetV2 at width 0.5 for one-channel images: the one adaptation both sample sizes share."""
from __future__ import annotations

from collections.abc import Sequence

import torchvision
from torch import nn

__all__ = ["grey_mobilenet_v2"]


def grey_mobilenet_v2(num_classes: int, *, stem_stride: int, unstrided: Sequence[int]) -> nn.Module:
    """MobileNetV2 (width 0.5, random weights) with a 1-channel stem conv of ``stem_stride``, and the
    first depthwise conv of each block in ``unstrided`` (indices into ``features``) set to stride 1."""
    model = torchvision.models.mobilenet_v2(weights=None, width_mult=0.5, num_classes=num_classes)
    stem = model.features[0][0]
    assert isinstance(stem, nn.Conv2d)
    model.features[0][0] = nn.Conv2d(1, stem.out_channels, kernel_size=3, stride=stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    for stage_start in unstrided:
        depthwise = model.features[stage_start].conv[1][0]
        assert isinstance(depthwise, nn.Conv2d) and depthwise.stride == (2, 2)
        depthwise.stride = (1, 1)
    return model
