"""The few fixes the pinned OpenMMLab stack needs on a current PyTorch.

Each fix names the upstream problem it covers and when it can be removed.
They are applied once, when :mod:`mim_pretrain` is imported; each patched
entry point is logged once per process, when a run starts
(:func:`log_applied`). Checks of the input data are not workarounds and
are not here: they are opt-in transforms and checks in
:mod:`mim_pretrain.datasets`.

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
named by ``tools/train.py --resume PATH``, by ``tools/test.py CONFIG CKPT``
or ``tools/demo.py CONFIG CKPT`` (``init_inferencer(config, ckpt)``), and
checkpoints inside the running job's own work dir (``--resume`` without a
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
``device_ids=None`` for a module on the CPU, as PyTorch requires. PyTorch's
``SyncBatchNorm`` refuses CPU tensors, so a CPU module's SyncBN layers (the
mmseg heads use them) become per-process ``BatchNorm`` (logged: statistics
are then not synchronised across processes). Nothing changes where a GPU is
visible. Remove when mmengine supports CPU DDP.

Checkpoints written in place
----------------------------
Upstream: mmengine's ``LocalBackend.put`` (used by ``save_checkpoint``)
opens the destination and writes into it, so a run killed during the write
leaves a truncated ``epoch_N.pth`` that ``--resume`` then fails on.

Fix: ``put`` writes a temporary file in the same folder and renames it over
the destination (``os.replace``, atomic on POSIX): a checkpoint file either
exists complete or not at all. Remove when mmengine writes atomically.

mmcv's RoIAlign and NMS under mixed precision
---------------------------------------------
Upstream: mmcv 2.1.0's RoIAlign kernels (CPU and CUDA) dispatch on float32,
float64 and float16 only, and its NMS kernels read float32 boxes only; under
bfloat16 autocast (on any device, and on a CPU under float16 too) every
Mask R-CNN stops in the RPN's NMS or the RoI extractor with "expected
scalar type Float but found BFloat16". mmdet's ``SingleRoIExtractor`` also
casts the RoIs to the features' dtype, which in bfloat16 rounds box
coordinates to 2-4 px at 512-1024 px (float16: 0.25-0.5 px).

Fix: ``SingleRoIExtractor.forward`` runs in float32 (RoIs included) when
the features are in a dtype RoIAlign lacks, and returns that dtype (mmdet
2.x ran RoI extraction in float32 under fp16 for the same reason); NMS gets
its boxes and scores in float32. float32 and float16 inputs take the
upstream path unchanged. Remove when mmcv's kernels take bfloat16.

"""
import copy
import logging
import os
import os.path as osp
import pickle
import tempfile
from typing import Dict, List, Optional, Tuple

import mmengine.dist.utils as dist_utils
import torch
import torch.distributed as torch_dist
from mmcv.ops.nms import NMSop
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmengine.fileio.backends import LocalBackend
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
        return _torch_load(filename, map_location, weights_only=False)
    try:
        return _torch_load(filename, map_location, weights_only=True)
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


def _torch_load(filename: str, map_location, weights_only: bool):
    """``torch.load`` whose errors on a damaged file name the file."""
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=weights_only)
    except pickle.UnpicklingError as e:
        if weights_only and 'Weights only load failed' in str(e):
            raise  # the caller explains the weights-only refusal
        error = e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        error = e
    first = str(error).strip().splitlines()[0] if str(error).strip() else ''
    raise RuntimeError(
        f'checkpoint {filename} cannot be read: it is truncated or not a '
        f'PyTorch checkpoint ({type(error).__name__}: {first}). If a run '
        'was killed while writing it, resume from the previous checkpoint.'
    ) from error


def atomic_put(self, obj: bytes, filepath) -> None:
    """``LocalBackend.put`` that never leaves a partly written file."""
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(obj)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


_upstream_build_dataloader = Runner.build_dataloader


def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
    """``Runner.build_dataloader`` that understands a scoped ``collate_fn``.

    Same arguments and result as upstream; see the module docstring.
    """
    log_applied()  # the run's logger exists now: report the fixes once
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
    on_cpu = bool(params) and params[0].device.type == 'cpu'
    if kwargs.get('device_ids') and on_cpu:
        kwargs['device_ids'] = None
    if on_cpu and any(isinstance(m, torch.nn.SyncBatchNorm)
                      for m in module.modules()):
        from mmengine.model import revert_sync_batchnorm
        for name, child in list(module.named_children()):
            setattr(module, name, revert_sync_batchnorm(child))
        print_log('SyncBatchNorm cannot run on the CPU: using per-process '
                  'BatchNorm in this CPU distributed run (statistics are not '
                  'synchronised across processes)', logger='current',
                  level=logging.WARNING)
    _upstream_ddp_init(self, module, detect_anomalous_params, **kwargs)


_upstream_roi_extractor_forward = SingleRoIExtractor.forward
_upstream_nms_forward = NMSop.forward
# dtypes mmcv 2.1.0's RoIAlign kernels dispatch on (CPU and CUDA alike)
ROI_ALIGN_DTYPES = (torch.float32, torch.float64, torch.float16)


def roi_extractor_forward(self, feats, rois: torch.Tensor,
                          roi_scale_factor: Optional[float] = None
                          ) -> torch.Tensor:
    """``SingleRoIExtractor.forward``, in float32 (RoIs too) for feature
    dtypes RoIAlign lacks (bfloat16)."""
    dtype = feats[0].dtype
    if dtype in ROI_ALIGN_DTYPES:
        return _upstream_roi_extractor_forward(self, feats, rois,
                                               roi_scale_factor)
    with torch.autocast(device_type=feats[0].device.type, enabled=False):
        out = _upstream_roi_extractor_forward(
            self, [f.float() for f in feats], rois.float(), roi_scale_factor)
    return out.to(dtype)


def nms_forward(ctx, bboxes: torch.Tensor, scores: torch.Tensor,
                *args) -> torch.Tensor:
    """``NMSop.forward`` with float32 boxes and scores (its kernels read
    float32 only)."""
    return _upstream_nms_forward(ctx, bboxes.float(), scores.float(), *args)


def _entry(owner, attribute: str) -> str:
    """A short name of a patched entry point, e.g. ``mmcv NMSop.forward``."""
    if isinstance(owner, type):
        return (f'{owner.__module__.split(".")[0]} '
                f'{owner.__qualname__}.{attribute}')
    return f'{owner.__name__}.{attribute}'


# (owner, attribute, replacement, the upstream problem in a few words)
PATCHES = (
    (Runner, 'build_dataloader', staticmethod(build_dataloader),
     "passes a base's '_scope_' to collate_fn"),
    (dist_utils, '_init_dist_pytorch', init_dist_pytorch,
     'needs a GPU and nccl'),
    (MMDistributedDataParallel, '__init__', ddp_init,
     'refuses CPU modules and CPU SyncBN'),
    (LocalBackend, 'put', atomic_put, 'non-atomic checkpoint writes'),
    (SingleRoIExtractor, 'forward', roi_extractor_forward,
     'RoIAlign lacks bfloat16'),
    (NMSop, 'forward', staticmethod(nms_forward),
     'NMS reads float32 only'),
)
_CHECKPOINT_ENTRY = ("mmengine CheckpointLoader scheme ''",
                     'torch>=2.6 weights_only default')
_applied: List[Tuple[str, str]] = []  # (entry point, problem) of apply()
_logged = {'done': False}


def log_applied() -> None:
    """Log each entry point :func:`apply` patched, once per process.

    One line per entry point, naming it and the upstream problem. It runs
    when a Runner first builds a dataloader (see :func:`build_dataloader`):
    the run's logger exists by then, so the lines reach its log file and,
    in a distributed run, only rank 0's console; a process that runs no
    Runner (``--help``, converters) prints nothing.
    """
    if _logged['done']:
        return
    _logged['done'] = True
    for entry, problem in _applied:
        print_log(f'mim_pretrain.compat: patched {entry} ({problem})',
                  logger='current')


def apply() -> None:
    """Apply every fix (idempotent); :func:`log_applied` reports them."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    applied = [_CHECKPOINT_ENTRY]
    for owner, attribute, replacement, problem in PATCHES:
        setattr(owner, attribute, replacement)
        applied.append((_entry(owner, attribute), problem))
    _applied[:] = applied


apply()
