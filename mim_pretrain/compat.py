"""The few fixes the pinned OpenMMLab stack needs on a current PyTorch.

Each fix names the upstream problem it covers and when it can be removed.
They are applied once, when :mod:`mim_pretrain` is imported.

Checkpoint loading under ``torch.load(weights_only=True)``
----------------------------------------------------------
Upstream: PyTorch >= 2.6 loads with ``weights_only=True`` by default, and
mmengine 0.10.7's ``load_from_local`` does not pass ``weights_only``. A full
mmengine checkpoint (the ones ``CheckpointHook`` writes) pickles the message
hub's ``HistoryBuffer`` objects, numpy arrays and the builtin ``getattr``;
the weights-only unpickler refuses them, so ``--resume`` and testing a trained
model fail. Allow-listing those globals is not an option: ``getattr`` would
let a malicious file call anything.

Fix: full (pickle) loading only for files the user vouched for — the file
named by ``tools/train.py --resume PATH`` or by ``tools/test.py CONFIG CKPT``,
and checkpoints inside the running job's own work dir (``--resume`` without a
path picks the latest of those) — each logged as such. Every other file
(pretrained weights, ``init_cfg`` checkpoints, ``load_from``) is loaded with
``weights_only=True``, and a file that needs more gets an error that names it
and says what to do. Remove when mmengine passes ``weights_only`` itself.

``collate_fn`` of configs inheriting ``mmpretrain::`` bases
-----------------------------------------------------------
Upstream: when a config inherits a base from another package
(``_base_ = 'mmpretrain::...'``), mmengine 0.10.7 adds ``_scope_`` to every
dict with a ``type`` in that base, including ``collate_fn=dict(
type='default_collate')`` of mmpretrain's dataset bases; ``Runner.
build_dataloader`` then passes ``_scope_`` on as a keyword of the collate
function: "default_collate() got an unexpected keyword argument '_scope_'".

Fix: ``Runner.build_dataloader`` resolves the collate function in that scope
and drops the key. Remove when mmengine strips ``_scope_`` itself.

Distributed runs on machines without a GPU
------------------------------------------
Upstream: mmengine 0.10.7's ``init_dist('pytorch')`` always calls
``torch.cuda.set_device`` and uses the configs' ``backend='nccl'``, and the
runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; all three
fail on a CPU-only machine, so ``tools/dist_train.sh`` cannot run there.

Fix: when no CUDA device is visible, the process group is created with the
``gloo`` backend (logged; NCCL cannot run without a GPU) and DDP gets
``device_ids=None`` for a module on the CPU, as PyTorch requires. Nothing
changes where a GPU is visible. Remove when mmengine supports CPU DDP.
"""
import copy
import os
import os.path as osp
import pickle
from typing import Dict, Optional

import mmengine.dist.utils as dist_utils
import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import FUNCTIONS, DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

_TRUSTED_FILES: Dict[str, str] = {}
_TRUSTED_DIRS: Dict[str, str] = {}


def _norm(path: str) -> str:
    return osp.realpath(osp.expanduser(path))


def trust_checkpoint(path: str, reason: str) -> None:
    """Allow full (pickle) loading of one checkpoint file.

    Args:
        path: the checkpoint file.
        reason: why it is trusted; printed in the log when it is loaded.
    """
    _TRUSTED_FILES[_norm(path)] = reason


def trust_directory(path: str, reason: str) -> None:
    """Allow full (pickle) loading of checkpoints under a directory.

    Args:
        path: the directory (normally the run's work dir).
        reason: why it is trusted; printed in the log when a file is loaded.
    """
    _TRUSTED_DIRS[_norm(path)] = reason


def clear_trusted() -> None:
    """Forget every trusted file and directory (used by tests)."""
    _TRUSTED_FILES.clear()
    _TRUSTED_DIRS.clear()


def trusted_reason(path: str) -> Optional[str]:
    """Why ``path`` may be fully loaded, or None when it may not.

    Args:
        path: a checkpoint file.

    Returns:
        str | None: the reason given to :func:`trust_checkpoint` or
        :func:`trust_directory`.
    """
    real = _norm(path)
    if real in _TRUSTED_FILES:
        return _TRUSTED_FILES[real]
    for folder, reason in _TRUSTED_DIRS.items():
        if real.startswith(folder.rstrip(osp.sep) + osp.sep):
            return reason
    return None


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint file, fully only if it is trusted.

    Replaces mmengine's ``load_from_local`` (scheme prefix ``''``).

    Args:
        filename: path of the checkpoint.
        map_location: as for :func:`torch.load`.

    Returns:
        The unpickled object (normally a dict).

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: the file is not trusted and holds more than tensors and
            plain containers.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    reason = trusted_reason(filename)
    if reason is not None:
        print_log(
            f'Loading {filename} with weights_only=False (full pickle) '
            f'because it is trusted: {reason}.', logger='current')
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise RuntimeError(
            f'{filename} is not a plain weights file, so it was not loaded: '
            f'torch.load(weights_only=True) refused it ({first}). Full '
            'pickle loading is done only for the checkpoint named by '
            '`tools/train.py --resume PATH` or `tools/test.py CONFIG CKPT` '
            'and for checkpoints in the run\'s own work dir. To use a full '
            'training checkpoint as pretrained weights, extract its weights '
            'first: `python tools/model_converters/extract_weights.py '
            f'{filename} OUT.pth`.') from e


_upstream_build_dataloader = Runner.build_dataloader


def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
    """``Runner.build_dataloader`` that understands a scoped ``collate_fn``.

    Same arguments and result as upstream; see the module docstring.
    """
    collate = dataloader.get('collate_fn') if isinstance(dataloader,
                                                         dict) else None
    if isinstance(collate, dict) and '_scope_' in collate:
        dataloader = copy.deepcopy(dataloader)
        collate = dataloader['collate_fn']
        scope = collate.pop('_scope_')
        if isinstance(collate.get('type'), str):
            with DefaultScope.overwrite_default_scope(scope):
                fn = FUNCTIONS.get(collate['type'])
            if fn is None:
                raise KeyError(f'collate_fn {collate["type"]!r} is not a '
                               f'registered function of scope {scope!r}')
            collate['type'] = fn
    return _upstream_build_dataloader(
        dataloader, seed=seed, diff_rank_seed=diff_rank_seed)


_upstream_init_dist_pytorch = dist_utils._init_dist_pytorch
_upstream_ddp_init = MMDistributedDataParallel.__init__


def init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
    """mmengine's ``_init_dist_pytorch``, usable without a GPU."""
    if torch.cuda.is_available() or init_backend != 'torch':
        return _upstream_init_dist_pytorch(
            backend, init_backend=init_backend, **kwargs)
    if backend == 'nccl':
        print(f'[mim_pretrain] rank {os.environ.get("RANK")}: no CUDA device '
              'visible, using the gloo backend instead of nccl', flush=True)
        backend = 'gloo'
    torch_dist.init_process_group(backend=backend, **kwargs)


def ddp_init(self, module, detect_anomalous_params=False, **kwargs):
    """``MMDistributedDataParallel.__init__`` accepting CPU modules."""
    params = list(module.parameters())
    if kwargs.get('device_ids') and params and params[0].device.type == 'cpu':
        kwargs['device_ids'] = None
    _upstream_ddp_init(self, module, detect_anomalous_params, **kwargs)


def apply() -> None:
    """Apply every fix (idempotent)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    Runner.build_dataloader = staticmethod(build_dataloader)
    dist_utils._init_dist_pytorch = init_dist_pytorch
    MMDistributedDataParallel.__init__ = ddp_init


apply()
