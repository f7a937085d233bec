"""ViTDet's simple feature pyramid: one single-stride ViT map to a
multi-scale pyramid for detection."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register_transfer_model
from ..utils import LayerNorm2d, rescale_layers


@register_transfer_model()
class ViTFeaturePyramid(nn.Module):
    """Single-stride ViT maps to a 4x / 2x / 1x / 0.5x pyramid.

    With one input map (ViTDet): every level is made from it (2 transposed
    convs with LayerNorm + GELU, 1 transposed conv, identity, max pool), then
    a 1x1 and a 3x3 conv with LayerNorm to ``out_channels`` (ViTDet's simple
    feature pyramid; the 1x1 and 3x3 convs start as mmdet's ``SimpleFPN``
    ones, which are mmcv ``ConvModule`` s: kaiming-normal, fan-out, ReLU
    gain). With four input maps (BEiT/MAE/LocalMIM segmentation), use
    mmseg's ``Feature2Pyramid`` or :class:`Feature2PyramidPool` instead.

    Args:
        in_channels: ViT width.
        out_channels: pyramid width.
        scales: output scales relative to the input stride, from
            (4, 2, 1, 0.5, 0.25): (4, 2, 1, 0.5) for 16-px patches gives
            strides 4-32; (2, 1, 0.5, 0.25) does for 8-px patches.
        num_outs: number of outputs; levels beyond ``len(scales)`` are
            stride-2 subsamplings of the last one (the RPN's extra level).
        norm_eps: epsilon of every LayerNorm (detectron2's ViTDet: 1e-6;
            mmdet's ViTDet configs build theirs with mmcv's default 1e-5).
        conv_norm: LayerNorm after the 1x1 and 3x3 convs (ViTDet's). False
            drops those norms and gives the convs biases instead, as an mmcv
            ``ConvModule`` with ``norm_cfg=None`` (mmdet's FPN); the tiny
            detection configs use it: with the norms, a randomly
            initialised tiny ViT Mask R-CNN scored 1.0 box AP after 300
            iterations on the colour-style data, without them 41.2
            (docs/reproduction.md, section 4.3).
    """

    def __init__(self,
                 in_channels: int = 768,
                 out_channels: int = 256,
                 scales: Sequence[float] = (4., 2., 1., 0.5),
                 num_outs: Optional[int] = None,
                 norm_eps: float = 1e-6,
                 conv_norm: bool = True) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.num_outs = num_outs or len(scales)
        if self.num_outs < len(scales):
            raise ValueError(f'num_outs {num_outs} < {len(scales)} scales')
        c = in_channels
        stages = []
        for s in scales:
            layers, width = rescale_layers(s, c, 'max', eps=norm_eps)
            convs = [
                nn.Conv2d(width, out_channels, 1, bias=not conv_norm),
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=not conv_norm)
            ]
            for conv in convs:
                nn.init.kaiming_normal_(conv.weight, mode='fan_out',
                                        nonlinearity='relu')
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
                layers.append(conv)
                if conv_norm:
                    layers.append(LayerNorm2d(out_channels, eps=norm_eps))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, inputs: Sequence[torch.Tensor]
                ) -> Tuple[torch.Tensor, ...]:
        """The pyramid, fine to coarse, from the last of ``inputs``."""
        x = inputs[-1]
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
