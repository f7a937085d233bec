"""Weight initialisation helpers."""
from typing import List, Optional, Union

import torch.nn as nn


def pretrained_cfg(init_cfg: Optional[Union[dict, List[dict]]]
                   ) -> Optional[dict]:
    """The ``Pretrained`` entry of an mmengine ``init_cfg`` (a dict or a
    list of dicts), or None: a module whose weights come from a checkpoint
    skips its own random initialisation."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for cfg in cfgs:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            return cfg
    return None


def xavier_init_(module: nn.Module) -> None:
    """MAE's initialisation of the layers inside ``module``: xavier-uniform
    Linear weights with zero biases, LayerNorms at ones and zeros."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
