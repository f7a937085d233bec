"""Reading the state dict of a checkpoint file the user named."""
import os.path as osp
from typing import Any, Dict, Tuple

import torch


def checkpoint_state_dict(ckpt: Any) -> Any:
    """The state dict inside a loaded checkpoint.

    Args:
        ckpt: what ``torch.load`` returned.

    Returns:
        Its ``'state_dict'`` entry (mmengine's checkpoints), else its
        ``'model'`` entry (the authors' and timm-style files), else the
        checkpoint itself (a bare state dict).
    """
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key), dict):
                return ckpt[key]
    return ckpt


def read_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The state dict of a checkpoint file, and the whole checkpoint.

    The user names the file on the command line, so it is loaded in full
    (training checkpoints pickle their message hub, the authors' files their
    argparse arguments). The state dict is the ``'state_dict'`` or
    ``'model'`` entry, else the top level.

    Raises:
        SystemExit: the file is missing or holds no state dict.
    """
    if not osp.isfile(path):
        raise SystemExit(f'checkpoint not found: {path}')
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    state = checkpoint_state_dict(ckpt)
    if not isinstance(state, dict) or not state:
        raise SystemExit(f'{path}: no state dict found (looked for '
                         '"state_dict", "model", then the top level)')
    return state, ckpt if isinstance(ckpt, dict) else {}
