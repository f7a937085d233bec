"""Reading the state dict of a checkpoint file the user named."""
import os.path as osp
from typing import Dict, Tuple

import torch


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
    state = ckpt
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key), dict):
                state = ckpt[key]
                break
    if not isinstance(state, dict) or not state:
        raise SystemExit(f'{path}: no state dict found (looked for '
                         '"state_dict", "model", then the top level)')
    return state, ckpt if isinstance(ckpt, dict) else {}
