"""One-command GPU check: the environment, an AMP training step of every
ViT-B / Swin-B config, the SDPA kernels the attention variants reach, and
the pretraining throughput and MFU.

    python tools/benchmarks/gpu_check.py [--work-dir work_dirs/gpu_check]
        [--device cuda|cpu] [--amp bf16|fp16] [--budget-s 480]
        [--pretrain-batch 32] [--det-batch 2] [--seg-batch 4]
        [--throughput-sizes 224 448] [--throughput-batch 224=128 448=64]
        [--warmup 1] [--repeats 2] [--threads N] [--peak-tflops T]

Meant for one GPU in at most 8 minutes (``--budget-s``: items not started
before the budget is spent are recorded as skipped). It writes
``gpu_check.json`` and ``gpu_check.md`` under ``--work-dir``. Items, in the
order they run, each recording its own error instead of stopping the run:

1. ``environment``: torch / CUDA / cuDNN / OpenMMLab versions, the GPU, SDPA's
   backend priority order, and mmcv's compiled ops (``mmcv.ops.nms``, the raw
   ``_ext.nms`` kernel and ``RoIAlign`` forward + backward) on the device, in
   float32 (what decides the item) and in the autocast dtype (recorded).
2. ``sdpa``: for each attention kind of the toolkit (plain; LoMaR's iRPE
   bias; ViTDet's decomposed relative position; BEiT's relative position
   bias; ViTDet window attention; LocalMIM-Swin's shifted windows) the
   arguments that reach ``scaled_dot_product_attention`` under autocast are
   captured from the real module; each backend is then tried alone
   (``torch.nn.attention.sdpa_kernel``) in SDPA's priority order, forward and
   backward: the first that accepts the inputs is the one SDPA takes. Its
   gradient w.r.t. the additive bias (the queries' for the plain kind) is
   compared with ``SDPBackend.MATH``'s on the same inputs, and both with a
   float32 math reference; the bias dtype must equal the query dtype.
3. ``pretrain``: one AMP training step (after ``--warmup`` untimed ones) of
   every ``*vit-base*`` / ``*swin-base*`` config under ``mmpretrain_configs/``
   at its own input size, built through the registry as
   ``pretrain_speed.py`` does: loss finite or not, step time, peak memory.
4. ``throughput``: LoMaR, LocalMIM and MAE ViT-B (``pretrain_speed.py``'s
   configs) at ``--throughput-sizes``, timed interleaved: images/s, the
   project's FLOP count (checked against the analytic formula), MFU against
   the device's dense bf16 peak, and the LoMaR/MAE and LocalMIM/MAE
   throughput ratios.
5. ``transfer``: one AMP training step of every ViT-B Mask R-CNN
   (``mmdet_configs/vitdet/*vit-b*100e*``, 1024 px, batch 2), ViT-B UperNet
   (``mmseg_configs/upernet/*vit-b*`` without ms-flip, 512 px, batch 4) and
   the Swin-B Mask R-CNN / UperNet (``*_swin`` folders), on the synthetic
   boxes, masks and label maps of ``transfer_speed.py``; pretrained
   ``init_cfg`` s are dropped (random weights).

Mixed precision: ``common.optim_wrapper_cfg`` (the toolkit's
``MixedPrecisionOptimWrapper``, as the AMP configs; bf16 without loss
scaling, fp16 with dynamic scaling), on the GPU or, with ``--device cpu``
(CI), with CPU autocast. ``--device cpu`` runs tiny models: the same
configs with the widths and depths of ``pretrain_speed.py --arch t`` and
``transfer_speed.py --tiny``, at small sizes and batch 2. No MFU on a
CPU.

Exit status: 1 when an item failed or raised, else 0.
"""
import argparse
import contextlib
import copy
import glob
import math
import os
import os.path as osp
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, List, Optional, Tuple
from unittest import mock

import torch

from . import common as bu
from . import pretrain_speed as ps
from . import transfer_speed as ts

REPO = ps.REPO

PRETRAIN_GLOBS = ('mmpretrain_configs/*/*vit-base*.py',
                  'mmpretrain_configs/*/*swin-base*.py')
DET_GLOBS = ('mmdet_configs/vitdet/*vit-b*100e*.py',
             'mmdet_configs/localmim_swin/*swin-b*.py')
SEG_GLOBS = ('mmseg_configs/upernet/*vit-b*.py',
             'mmseg_configs/localmim_swin/*swin-b*.py')
# model type in a pretraining config -> pretrain_speed's model name
PRETRAIN_KINDS = {
    'LoMaR': 'lomar',
    'LocalMIM': 'localmim',
    'LocalMIMSwin': 'localmim-swin',
    'MAE': 'mae'
}
THROUGHPUT_MODELS = ('lomar', 'localmim', 'mae')
# tiny Swin for the transfer configs on CPU (the project's synthetic
# Swin-tiny configs' widths and depths, the window of the Swin-B config)
SWIN_TINY = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
# largest normalised difference from the math kernel, per dtype
GRAD_TOL = {
    torch.bfloat16: 3e-2,
    torch.float16: 5e-3,
    torch.float32: 1e-4,
}
AMP_DTYPES = dict(bf16=torch.bfloat16, fp16=torch.float16)
# parameter names of the (zero-initialised) relative position tables
POSITION_TABLES = ('lookup_table_weight', 'rel_pos_h', 'rel_pos_w',
                   'relative_position_bias_table')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Environment, AMP training steps, SDPA backends and '
        'pretraining throughput/MFU on one device')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check')
    parser.add_argument('--device', default=None,
                        help='cuda or cpu (default: cuda when available); '
                        'cpu runs tiny models (CI)')
    parser.add_argument('--amp', default='bf16', choices=['bf16', 'fp16'],
                        help='autocast dtype')
    parser.add_argument('--budget-s', type=float, default=480.,
                        help='items not started within this many seconds '
                        'are skipped (recorded)')
    parser.add_argument('--pretrain-batch', type=int, default=None,
                        help='pretraining step batch (default 32 on GPU, '
                        '2 on CPU)')
    parser.add_argument('--det-batch', type=int, default=None,
                        help='Mask R-CNN batch (default 2)')
    parser.add_argument('--seg-batch', type=int, default=None,
                        help='UperNet batch (default 4 on GPU, 2 on CPU)')
    parser.add_argument('--throughput-sizes', nargs='+', type=int,
                        default=None,
                        help='default 224 448 on GPU, 128 224 on CPU')
    parser.add_argument('--throughput-batch', nargs='*', default=None,
                        metavar='SIZE=BATCH',
                        help='throughput batch per size (default 224=128 '
                        '448=64 on GPU, 2 on CPU)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed steps per model')
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed steps per model (default 3 on GPU, 1 '
                        'on CPU; throughput: at least 2)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: 1 on CPU)')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='device peak for MFU (default: the bf16 dense '
                        'peak of a known GPU, common.BF16_PEAK_TFLOPS)')
    parser.add_argument('--only', nargs='+', default=None,
                        choices=['sdpa', 'pretrain', 'throughput',
                                 'transfer'],
                        help='run only these sections (the environment '
                        'always runs)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.warmup < 1 or (args.repeats is not None and args.repeats < 1):
        parser.error('--warmup and --repeats must be >= 1')
    try:
        args.throughput_batch = None if args.throughput_batch is None else {
            int(k): int(v)
            for k, v in (item.split('=') for item in args.throughput_batch)
        }
    except ValueError:
        parser.error('--throughput-batch takes SIZE=BATCH items')
    return args


def resolve(args) -> torch.device:
    """The device, and every default that depends on it, filled in."""
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    gpu = device.type == 'cuda'
    args.tiny = not gpu
    if args.threads is None and not gpu:
        args.threads = 1
    defaults = dict(pretrain_batch=32 if gpu else 2, det_batch=2,
                    seg_batch=4 if gpu else 2, repeats=3 if gpu else 1)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.throughput_sizes is None:
        args.throughput_sizes = [224, 448] if gpu else [128, 224]
    if args.throughput_batch is None:
        args.throughput_batch = {224: 128, 448: 64} if gpu else {}
    args.det_size, args.seg_size = (1024, 512) if gpu else (64, 64)
    return device


# ------------------------------------------------------------- the runner


class Runner:
    """Runs items one by one: each records its own error, is skipped once
    the budget is spent, and prints its elapsed time."""

    def __init__(self, budget_s: float, device: torch.device) -> None:
        self.budget_s, self.device = budget_s, device
        self.t0 = time.perf_counter()
        self.items: List[dict] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def run(self, section: str, name: str, fn: Callable[[], dict],
            always: bool = False, **meta) -> dict:
        """Run ``fn`` (its record, or its error), unless the budget is
        spent (``always``: run anyway)."""
        start = self.elapsed()
        if start > self.budget_s and not always:
            rec = dict(status='skipped',
                       note=f'time budget of {self.budget_s:.0f} s spent '
                       f'({start:.0f} s elapsed) before this item')
        else:
            try:
                rec = fn()
                rec.setdefault('status', 'passed')
            except Exception as err:  # record, go on
                rec = dict(status='error',
                           error=f'{type(err).__name__}: {err}'[:2000],
                           traceback=traceback.format_exc()[-3000:])
            bu.release_memory(self.device)
        rec = dict(section=section, name=name, **meta, **rec)
        rec['elapsed_s'] = self.elapsed() - start
        self.items.append(rec)
        line = (f"[{self.elapsed():7.1f} s] {section:<10} {name}: "
                f"{rec['status']} ({rec['elapsed_s']:.1f} s)")
        if rec.get('error'):
            line += ' ' + rec['error'].splitlines()[0][:200]
        elif rec.get('note'):
            line += ' ' + rec['note']
        print(line, flush=True)
        return rec


def timed_step_record(rec: dict, model, wrapper, data, size: int,
                      batch: int, changed: dict, memory, device,
                      args) -> dict:
    """``rec`` with the timed ``train_step`` of ``model`` on ``data``, its
    images/s and peak memory, and the step's status."""
    rec.update(size=size, batch=batch, changed=changed,
               optim_wrapper=type(wrapper).__name__,
               params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    rec.update(time_train_steps(
        model, lambda: model.train_step(data, wrapper), device, args.warmup,
        args.repeats, args.amp))
    rec.update(images_per_s=batch / (rec['step_ms'] / 1e3),
               peak_mem_mib=memory.peak_mib(), mem_method=memory.method)
    return step_status(rec)


def build_optim_wrapper(model, optimizer: dict, device: torch.device,
                        amp: str):
    from mmengine.optim import build_optim_wrapper as build
    cfg = bu.optim_wrapper_cfg(optimizer, amp)
    if amp != 'none':
        cfg['device'] = device.type
    return build(model, cfg)


def losses_record(log_vars: dict) -> dict:
    """Float losses of a ``train_step`` and whether all are finite."""
    values = {k: float(v.detach() if torch.is_tensor(v) else v)
              for k, v in log_vars.items()}
    return dict(loss=values.get('loss'), log_vars=values,
                loss_finite=all(math.isfinite(v) for v in values.values()))


@contextlib.contextmanager
def linear_dtypes(model: torch.nn.Module, seen: List[str]):
    """Record the output dtype of the model's first ``nn.Linear`` call,
    which autocast runs in the low dtype: the proof that the step ran under
    mixed precision."""
    def hook(module, inputs, output):
        if not seen:
            seen.append(str(output.dtype)[6:])

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Linear)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def time_train_steps(model: torch.nn.Module, step: Callable[[], dict],
                     device: torch.device, warmup: int, repeats: int,
                     amp: str) -> dict:
    """``warmup`` untimed and ``repeats`` timed calls of a train step; the
    losses of the first and the last step, and the dtype a linear layer
    computed in during the first (must be the autocast dtype)."""
    seen: List[str] = []
    with linear_dtypes(model, seen):
        first = losses_record(step())
    want = str(AMP_DTYPES[amp])[6:]
    for _ in range(warmup - 1):
        step()
    bu.synchronize(device)
    last = {}

    def timed():
        last['log_vars'] = step()

    timing = bu.time_interleaved([timed], device, repeats)[0]
    final = losses_record(last['log_vars'])
    return dict(first_step=first, last_step=final, loss=final['loss'],
                loss_finite=first['loss_finite'] and final['loss_finite'],
                step_ms=1e3 * timing['median_s'], times_s=timing['times_s'],
                linear_dtype=seen[0] if seen else None,
                autocast_ok=bool(seen) and seen[0] == want)


def step_status(rec: dict) -> dict:
    """``failed`` with the reason when the loss is not finite or the step
    did not run under autocast."""
    errors = []
    if not rec['loss_finite']:
        errors.append(f"non-finite loss: {rec['last_step']['log_vars']} "
                      f"(first step: {rec['first_step']['log_vars']})")
    if not rec['autocast_ok']:
        errors.append(f"linear layers ran in {rec['linear_dtype']}, not "
                      'the autocast dtype')
    if errors:
        rec.update(status='failed', error='; '.join(errors))
    return rec


# ------------------------------------------------------------ environment


def _version(module: str) -> Optional[str]:
    try:
        return __import__(module).__version__
    except Exception:  # not installed / broken: recorded
        return None


def sdp_priority() -> list:
    """SDPA's backend priority order (the order it tries them in)."""
    from torch.nn.attention import SDPBackend
    try:
        order = [SDPBackend(int(b)) for b in
                 torch._C._get_sdp_priority_order()]
    except (AttributeError, TypeError, ValueError):
        order = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                 SDPBackend.MATH, SDPBackend.CUDNN_ATTENTION]
    return [b for b in order if b.name not in ('ERROR', 'OVERRIDEABLE')]


def mmcv_ops(device: torch.device, amp: str) -> List[dict]:
    """``mmcv.ops.nms``, the raw ``_ext.nms`` kernel and ``RoIAlign``
    (forward + backward) on ``device`` in float32 and the autocast dtype.
    """
    import mmcv.ops
    from mmcv.utils import ext_loader
    ext = ext_loader.load_ext('_ext', ['nms'])
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(64, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(64, 2, generator=gen) * 40],
                      1)
    scores = torch.rand(64, generator=gen)
    feats = torch.randn(2, 16, 32, 32, generator=gen)
    rois = torch.tensor([[0, 1., 1., 20., 20.], [1, 4., 2., 30., 17.],
                         [0, 0., 0., 31., 31.]])

    def nms(b, s):
        dets, keep = mmcv.ops.nms(b, s, 0.5)
        return keep

    def raw_nms(b, s):
        return ext.nms(b, s, iou_threshold=0.5, offset=0)

    def roi_align(f, r):
        f = f.clone().requires_grad_()
        out = mmcv.ops.RoIAlign((7, 7), spatial_scale=1.0,
                                sampling_ratio=2)(f, r)
        out.float().sum().backward()
        return out

    cases = (('mmcv.ops.nms', nms, (boxes, scores)),
             ('_ext.nms (raw kernel)', raw_nms, (boxes, scores)),
             ('mmcv.ops.RoIAlign fwd+bwd', roi_align, (feats, rois)))
    out = []
    for dtype in (torch.float32, AMP_DTYPES[amp]):
        for name, fn, inputs in cases:
            rec = dict(op=name, dtype=str(dtype)[6:], device=str(device))
            try:
                res = fn(*(x.to(device, dtype) for x in inputs))
                bu.synchronize(device)
                rec.update(ok=True, ran_on=res.device.type)
            except Exception as err:  # recorded
                rec.update(ok=False,
                           error=f'{type(err).__name__}: {err}'[:500])
            out.append(rec)
    return out


def environment(device: torch.device, args) -> dict:
    import mmcv.ops
    env = dict(
        torch=torch.__version__, cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        cuda_available=torch.cuda.is_available(), device=str(device),
        versions={m: _version(m) for m in ('mmcv', 'mmengine', 'mmdet',
                                           'mmseg', 'mmpretrain', 'timm',
                                           'numpy')},
        mmcv_compiled_cuda=mmcv.ops.get_compiling_cuda_version(),
        mmcv_compiler=mmcv.ops.get_compiler_version(),
        sdp_priority=[b.name for b in sdp_priority()],
        amp=args.amp, tiny_models=args.tiny,
        peak_tflops=bu.peak_tflops(device, args.peak_tflops))
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        env.update(gpu_name=props.name,
                   capability=list(torch.cuda.get_device_capability(device)),
                   gpu_memory_gib=props.total_memory / 2**30,
                   bf16_supported=torch.cuda.is_bf16_supported())
    else:
        env.update(gpu_name=None, cpu_name=bu.cpu_name())
    ops = mmcv_ops(device, args.amp)
    env['mmcv_ops'] = ops
    fp32 = [o for o in ops if o['dtype'] == 'float32']
    env['mmcv_ops_ok'] = all(o['ok'] for o in fp32)
    env['mmcv_ops_ran_on'] = sorted({o.get('ran_on') for o in fp32
                                     if o['ok']})
    status = 'passed' if env['mmcv_ops_ok'] else 'failed'
    if status == 'failed':
        env['error'] = '; '.join(f"{o['op']}: {o['error']}" for o in fp32
                                 if not o['ok'])
    return dict(status=status, environment=env)


# ----------------------------------------------------------------- SDPA


@contextlib.contextmanager
def capture_sdpa(calls: List[dict]):
    """Record the first call's arguments to
    ``F.scaled_dot_product_attention`` (the models call it through
    ``torch.nn.functional``)."""
    import torch.nn.functional as F
    original = F.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, *rest, **kwargs):
        if not calls:
            calls.append(dict(
                q=query.detach(), k=key.detach(), v=value.detach(),
                mask=None if attn_mask is None else attn_mask.detach(),
                mask_requires_grad=bool(attn_mask is not None
                                        and attn_mask.requires_grad),
                rest=rest, kwargs=dict(kwargs)))
        return original(query, key, value, attn_mask, *rest, **kwargs)

    F.scaled_dot_product_attention = spy
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def sdpa_kinds(tiny: bool) -> Dict[str, Tuple[str, Callable]]:
    """kind -> (description, builder of (module, forward)) at ViT-B / Swin-B
    sizes, or tiny ones."""
    from mim_pretrain.models.localmim_swin import WindowMSA, window_layout
    from mim_pretrain.models.vit import Attention, Block
    dims, heads = (96, 2) if tiny else (768, 12)
    batch = 2 if tiny else 32
    det_grid = 16 if tiny else 64  # 1024 px / 16
    seg_grid = 8 if tiny else 32  # 512 px / 16

    def tokens(b, n, c):
        return torch.randn(b, n, c)

    def plain():
        return Attention(dims, heads), (tokens(batch, 50, dims), None)

    def irpe():  # LoMaR: 4 windows of 7x7 patches + cls per image
        return (Attention(dims, heads, irpe=dict()),
                (tokens(4 * batch, 50, dims), (7, 7)))

    def decomposed():  # a ViTDet global block on the 1024-px grid
        g = det_grid
        return (Attention(dims, heads, rel_pos_size=(g, g)),
                (tokens(2, g * g, dims), (g, g)))

    def beit():  # UperNet's backbone at 512 px, cls token
        g = seg_grid
        return (Attention(dims, heads, rel_bias_size=(g, g)),
                (tokens(2 if tiny else 4, 1 + g * g, dims), (g, g)))

    def window_vitdet():  # ViTDet 14x14 windows, decomposed rel pos
        g = det_grid
        return (Block(dims, heads, window_size=14, rel_pos_size=(14, 14)),
                (tokens(2, g * g, dims), (g, g)))

    def window_swin():  # LocalMIM-Swin stage 1, shifted 7x7 windows
        sdims, sheads = (64, 2) if tiny else (128, 4)
        g = 14 if tiny else 56
        msa = WindowMSA(sdims, sheads, 7)
        layout = window_layout(torch.arange(g * g)[None], (g, g), 7, 3)

        class Swin(torch.nn.Module):

            def __init__(self):
                super().__init__()
                self.msa = msa

            def forward(self, x, _):
                return self.msa(x, layout)

        return Swin(), (tokens(batch, g * g, sdims), None)

    return dict(
        plain=('no bias (MAE / LocalMIM encoder)', plain),
        irpe=("LoMaR's iRPE key bias (IRPEKeyBias), with gradient", irpe),
        decomposed=("ViTDet's decomposed relative position, global block",
                    decomposed),
        beit=('BEiT relative position bias (UperNet backbone)', beit),
        window_vitdet=('ViTDet 14x14 window attention, decomposed '
                       'relative position', window_vitdet),
        window_swin=('LocalMIM-Swin shifted 7x7 windows, relative position '
                     'bias + region mask', window_swin))


def _sdpa_trial(backend, call: dict, grad_out: torch.Tensor,
                dtype: Optional[torch.dtype] = None) -> dict:
    """One forward + backward with ``backend`` alone."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    def leaf(t, grad=True):
        t = t.clone() if dtype is None else t.to(dtype)
        return t.requires_grad_(grad)

    q, k, v = (leaf(call[n]) for n in 'qkv')
    mask = None if call['mask'] is None else leaf(
        call['mask'], call['mask_requires_grad'])
    rec = dict(backend=backend.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            with sdpa_kernel([backend]):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                     **call['kwargs'])
        except RuntimeError as err:
            # torch's warnings name why each kernel refused the inputs
            reasons = [' '.join(str(w.message).split(
                '(Triggered internally')[0].split())[:300] for w in caught]
            rec.update(accepted=False, error=str(err).splitlines()[0][:300],
                       reasons=reasons[:8])
            return rec
        rec['accepted'] = True
        try:
            with sdpa_kernel([backend]):
                out.backward(grad_out.to(out.dtype))
            rec['backward_ok'] = True
        except RuntimeError as err:
            rec.update(backward_ok=False,
                       backward_error=str(err).splitlines()[0][:300])
            return rec
    rec['grads'] = dict(out=out.detach(), q=q.grad)
    if mask is not None and mask.requires_grad:
        rec['grads']['bias'] = mask.grad
    return rec


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    """max |a - ref| / max |ref| (computed in float32)."""
    a, ref = a.float(), ref.float()
    scale = ref.abs().max().clamp(min=1e-30)
    return float((a - ref).abs().max() / scale)


def sdpa_check(build: Callable, device: torch.device, amp: str,
               seed: int) -> dict:
    """Which backend SDPA takes for one attention kind, and the gradient
    check of that backend against the math kernel."""
    from torch.nn.attention import SDPBackend
    torch.manual_seed(seed)
    module, (x, grid) = build()
    for name, p in module.named_parameters():
        if any(t in name for t in POSITION_TABLES):
            # the position tables start at zero: give them values
            torch.nn.init.normal_(p, std=0.02)
    module = module.to(device).train()
    x = x.to(device)
    calls: List[dict] = []
    with capture_sdpa(calls), bu.autocast(device, amp):
        module(x, grid)
    call = calls[0]
    q, mask = call['q'], call['mask']
    rec = dict(q_shape=list(q.shape), q_dtype=str(q.dtype)[6:],
               bias_shape=None if mask is None else list(mask.shape),
               bias_dtype=None if mask is None else str(mask.dtype)[6:],
               bias_requires_grad=call['mask_requires_grad'])
    rec['bias_dtype_ok'] = mask is None or mask.dtype == q.dtype
    gen = torch.Generator().manual_seed(seed)
    grad_out = torch.randn(q.shape[:-1] + call['v'].shape[-1:],
                           generator=gen).to(device)
    order = sdp_priority()
    trials = {b.name: _sdpa_trial(b, call, grad_out) for b in order}
    if 'MATH' not in trials:
        trials['MATH'] = _sdpa_trial(SDPBackend.MATH, call, grad_out)
    taken = next((b.name for b in order if trials[b.name]['accepted']),
                 None)
    rec['priority'] = [b.name for b in order]
    rec['backends'] = {
        name: {k: v for k, v in t.items() if k != 'grads'}
        for name, t in trials.items()}
    rec['taken'] = taken
    if taken is None:
        return dict(rec, status='failed',
                    error='no SDPA backend accepts these inputs')
    chosen, math_ = trials[taken], trials['MATH']
    if not chosen.get('backward_ok'):
        return dict(rec, status='failed',
                    error=f'{taken} backward: {chosen["backward_error"]}')
    ref = _sdpa_trial(SDPBackend.MATH, call, grad_out, torch.float32)
    wrt = 'bias' if 'bias' in chosen['grads'] else 'q'
    tol = GRAD_TOL[q.dtype]
    cmp = dict(
        wrt=wrt, tolerance=tol, against=f'{taken} vs MATH',
        same_kernel=taken == 'MATH',
        grad_err_vs_math=_rel_err(chosen['grads'][wrt],
                                  math_['grads'][wrt]),
        out_err_vs_math=_rel_err(chosen['grads']['out'],
                                 math_['grads']['out']),
        grad_err_vs_fp32=_rel_err(chosen['grads'][wrt], ref['grads'][wrt]),
        math_grad_err_vs_fp32=_rel_err(math_['grads'][wrt],
                                       ref['grads'][wrt]))
    # equal to the math kernel within the dtype's tolerance, or at least
    # as close as the math kernel to a float32 reference
    cmp['passed'] = bool(
        cmp['grad_err_vs_math'] <= tol
        or cmp['grad_err_vs_fp32'] <= 2 * cmp['math_grad_err_vs_fp32'] +
        GRAD_TOL[torch.float32])
    rec['grad_check'] = cmp
    ok = cmp['passed'] and rec['bias_dtype_ok']
    if not ok:
        rec['error'] = ('bias dtype differs from the query dtype'
                        if not rec['bias_dtype_ok'] else
                        f'{wrt} gradient of {taken} differs from MATH by '
                        f'{cmp["grad_err_vs_math"]:.3g} (tolerance {tol})')
    return dict(rec, status='passed' if ok else 'failed')


# ------------------------------------------------------------ pretraining


def config_files(patterns) -> List[str]:
    """Config files (repository-relative) matching ``patterns``."""
    out = []
    for pattern in patterns:
        out += sorted(glob.glob(osp.join(REPO, pattern)))
    return [osp.relpath(p, REPO) for p in out]


def pretrain_configs() -> List[str]:
    return config_files(PRETRAIN_GLOBS)


def transfer_configs() -> List[Tuple[str, str]]:
    """(task, config) of the ViT-B / Swin-B transfer configs checked."""
    det = config_files(DET_GLOBS)
    seg = [p for p in config_files(SEG_GLOBS) if 'ms-flip' not in p]
    return [('det', p) for p in det] + [('seg', p) for p in seg]


def config_input_size(cfg) -> int:
    """The training crop of a pretraining config (RandomResizedCrop's
    scale), else 224."""
    try:
        pipeline = cfg.train_dataloader.dataset.pipeline
    except AttributeError:
        return 224
    for t in pipeline:
        if t.get('type') == 'RandomResizedCrop':
            scale = t.get('scale', 224)
            return int(scale if isinstance(scale, int) else scale[0])
    return 224


def pretrain_model_config(path: str, tiny: bool) -> Tuple[str, dict, dict]:
    """(pretrain_speed name, model config, changed keys) of a pretraining
    config file, through ``pretrain_speed.model_config`` (the ViT-B / Swin-B
    file with arch 't' on CPU)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, path))
    kind = cfg.model['type']
    if kind not in PRETRAIN_KINDS:
        raise ValueError(f'{path}: no check for model type {kind!r}')
    name = PRETRAIN_KINDS[kind]
    if tiny:  # small multiples of 32 (LocalMIM's 0.5x scale needs 32-px
        # cells), whose Swin stage grids the window 7 divides
        size = 224 if name == 'localmim-swin' else 128
    else:
        size = config_input_size(cfg)
    with mock.patch.object(ps, 'config_path',
                           lambda *_: osp.join(REPO, path)):
        model_cfg, changed = ps.model_config(name, 't' if tiny else 'b',
                                             size)
    return name, dict(model_cfg, size=size), changed


def pretrain_step(path: str, device: torch.device, args) -> dict:
    name, cfg, changed = pretrain_model_config(path, args.tiny)
    size, batch = cfg['size'], args.pretrain_batch
    memory = bu.PeakMemory(device)
    memory.start()
    torch.manual_seed(args.seed)
    model = ps.build_model(cfg['model'], device)
    wrapper = build_optim_wrapper(model, ps.OPTIMIZER, device, args.amp)
    data = ps.make_batch(name, batch, size, device)
    return timed_step_record(dict(model=name), model, wrapper, data, size,
                             batch, changed, memory, device, args)


# ------------------------------------------------------------- throughput


def throughput_size(size: int, device: torch.device, args) -> dict:
    """LoMaR, LocalMIM and MAE (pretrain_speed's configs) at one size,
    timed interleaved, FLOPs counted, MFU."""
    arch = 't' if args.tiny else 'b'
    batch = args.throughput_batch.get(size, args.pretrain_batch)
    peak = bu.peak_tflops(device, args.peak_tflops)
    runs, entries = [], []
    for name in THROUGHPUT_MODELS:
        try:
            cfg, changed = ps.model_config(name, arch, size)
            memory = bu.PeakMemory(device)
            memory.start()
            torch.manual_seed(args.seed)
            model = ps.build_model(cfg['model'], device)
            wrapper = build_optim_wrapper(model, ps.OPTIMIZER, device,
                                          args.amp)
            data = ps.make_batch(name, batch, size, device)
            for _ in range(args.warmup):
                model.train_step(data, wrapper)
            bu.synchronize(device)
            runs.append(dict(model=name, config=cfg['path'], size=size,
                             batch=batch, changed=changed,
                             peak_mem_mib=memory.peak_mib()))
            entries.append((model, wrapper, data))
        except Exception as err:  # recorded per model
            runs.append(dict(model=name, size=size, batch=batch,
                             error=f'{type(err).__name__}: {err}'[:1000]))
    ok = [r for r in runs if 'error' not in r]

    def stepper(model, wrapper, data):
        return lambda: model.train_step(data, wrapper)

    timings = bu.time_interleaved(
        [stepper(*e) for e in entries], device, max(2, args.repeats)) \
        if entries else []
    for rec, (model, wrapper, data), timing in zip(ok, entries, timings):
        fwd, total = ps.count_step_flops(model, data, wrapper)
        parts = ps.analytic_flops(rec['model'], model, size)
        rec.update(
            median_s=timing['median_s'], times_s=timing['times_s'],
            images_per_s=batch / timing['median_s'],
            gflops_fwd_per_image=fwd / batch / 1e9,
            gflops_train_per_image=total / batch / 1e9,
            achieved_tflops=total / timing['median_s'] / 1e12)
        if parts is not None:
            rec['counted_over_analytic'] = fwd / batch / sum(parts.values())
        rec['mfu'] = rec['achieved_tflops'] / peak if peak else None
    del entries
    out = dict(size=size, batch=batch, peak_tflops=peak, runs=runs)
    bad = [r for r in runs if 'error' in r]
    if bad:
        out.update(status='failed', error='; '.join(
            f"{r['model']}: {r['error']}" for r in bad))
    return out


def throughput_ratios(items: List[dict]) -> List[dict]:
    """LoMaR / MAE and LocalMIM / MAE images/s, per size."""
    out = []
    for item in items:
        runs = {r['model']: r for r in item.get('runs', [])
                if 'images_per_s' in r}
        if 'mae' not in runs:
            continue
        for name in ('lomar', 'localmim'):
            if name in runs:
                a, b = runs[name], runs['mae']
                out.append(dict(
                    ratio=f"{ps.NAMES[name]} / MAE", size=item['size'],
                    images_per_s_ratio=a['images_per_s'] / b['images_per_s'],
                    train_flops_ratio=(a['gflops_train_per_image'] /
                                       b['gflops_train_per_image'])))
    return out


# --------------------------------------------------------------- transfer


def transfer_model_config(task: str, path: str, size: int,
                          tiny: bool) -> Tuple[object, dict]:
    """The model config of a Mask R-CNN / UperNet config at ``size``:
    ``transfer_speed.model_configs`` for the ViT ones, the Swin backbone
    made tiny here for the Swin ones; a pretrained ``init_cfg`` dropped."""
    from mmengine.config import Config
    changed = {}
    cfg = Config.fromfile(osp.join(REPO, path))
    if cfg.model['backbone']['type'] == 'MIMVisionTransformer':
        with mock.patch.dict(ts.TASKS[task], config=path):
            model = ts.model_configs(task, size, tiny)['ours']
        changed['backbone.img_size'] = size
        if tiny:
            changed['tiny'] = 'transfer_speed.py --tiny'
    else:
        model = copy.deepcopy(cfg.model)
        bb = model['backbone']
        if task == 'seg':
            model['data_preprocessor']['size'] = (size, size)
            changed['data_preprocessor.size'] = (size, size)
        if tiny:
            bb.update(copy.deepcopy(SWIN_TINY))
            chans = [SWIN_TINY['embed_dims'] * 2**i for i in range(4)]
            if task == 'det':
                model['neck']['in_channels'] = chans
                model['train_cfg']['rpn_proposal']['max_per_img'] = 64
                model['train_cfg']['rcnn']['sampler']['num'] = 16
            else:
                model['decode_head'].update(in_channels=chans, channels=64)
                model['auxiliary_head'].update(in_channels=chans[2],
                                               channels=32)
            changed['tiny'] = dict(SWIN_TINY)
    init = model['backbone'].get('init_cfg')
    if init and init.get('type') == 'Pretrained':
        model['backbone'].pop('init_cfg')
        changed['backbone.init_cfg'] = ('dropped (random weights; was '
                                        f"{init.get('checkpoint')})")
    return model, changed


def transfer_step(task: str, path: str, device: torch.device, args) -> dict:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    size = args.det_size if task == 'det' else args.seg_size
    batch = args.det_batch if task == 'det' else args.seg_batch
    model_cfg, changed = transfer_model_config(task, path, size, args.tiny)
    memory = bu.PeakMemory(device)
    memory.start()
    torch.manual_seed(args.seed)
    model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(model_cfg)))
    model.init_weights()
    model = model.to(device).train()
    wrapper = build_optim_wrapper(model, ts.OPTIMIZER, device, args.amp)
    data = ts.make_data(task, batch, size, device, True, args.seed)
    return timed_step_record(
        dict(backbone=model_cfg['backbone']['type']), model, wrapper, data,
        size, batch, changed, memory, device, args)


# ----------------------------------------------------------------- output


def _fmt_status(rec: dict) -> str:
    return rec['status'] + (f": {rec['error'].splitlines()[0][:160]}"
                            if rec.get('error') else
                            f": {rec['note']}" if rec.get('note') else '')


def write_markdown(path: str, result: dict) -> None:
    items = result['items']
    env = result['environment']
    s = result['summary']
    lines = [
        '# GPU check', '',
        f"Machine: {bu.machine_line(result['machine'])}. Autocast "
        f"{result['args']['amp']}"
        + (', tiny models (CPU run: the figures mean nothing)'
           if result['args']['tiny'] else '') +
        f". {s['passed']} passed, {s['failed']} failed, {s['error']} "
        f"raised, {s['skipped']} skipped, in {s['elapsed_s']:.0f} s "
        f"(budget {result['args']['budget_s']:.0f} s).", '',
        '## Environment', ''
    ]
    if env:
        lines += [bu.markdown_table(['key', 'value'], [
            [k, env.get(k)] for k in (
                'torch', 'cuda', 'cudnn', 'device', 'gpu_name',
                'capability', 'gpu_memory_gib', 'bf16_supported',
                'mmcv_compiled_cuda', 'peak_tflops')
            if k in env] + [['sdp_priority', ', '.join(env['sdp_priority'])]]
            + [[k, v] for k, v in env['versions'].items()]), '',
            bu.markdown_table(['mmcv op', 'dtype', 'device', 'ran on',
                               'status'],
                              [[o['op'], o['dtype'], o['device'],
                                o.get('ran_on'),
                                'ok' if o['ok'] else o['error'][:120]]
                               for o in env['mmcv_ops']]), '']
    env_item = next((i for i in items if i['section'] == 'environment'),
                    None)
    if env_item and env_item['status'] != 'passed':
        lines += [f'Environment: {_fmt_status(env_item)}', '']
    sdpa = [i for i in items if i['section'] == 'sdpa']
    if sdpa:
        rows = []
        for i in sdpa:
            g = i.get('grad_check') or {}
            refused = [n for n, b in (i.get('backends') or {}).items()
                       if not b['accepted']]
            rows.append([
                i['name'], i.get('q_shape'), i.get('q_dtype'),
                i.get('bias_dtype'), i.get('bias_requires_grad'),
                i.get('taken'), ', '.join(refused) or '-', g.get('wrt'),
                g.get('grad_err_vs_math'), g.get('grad_err_vs_fp32'),
                g.get('math_grad_err_vs_fp32'), _fmt_status(i)])
        lines += ['## SDPA backends', '',
                  'Each backend tried alone in priority order '
                  f"({', '.join(env.get('sdp_priority', []))}); "
                  '"taken" is the first that accepts the inputs. Errors '
                  'are max |difference| / max |reference|.', '',
                  bu.markdown_table([
                      'kind', 'q shape', 'q dtype', 'bias dtype',
                      'bias needs grad', 'taken', 'refused', 'grad wrt',
                      'err vs MATH', 'err vs fp32', 'MATH err vs fp32',
                      'status'], rows), '']
    for section, title in (('pretrain', 'AMP training steps, pretraining'),
                           ('transfer', 'AMP training steps, transfer')):
        rows = [[i['name'], i.get('model') or i.get('backbone'),
                 i.get('size'), i.get('batch'), i.get('loss'),
                 {True: 'yes', False: 'NO'}.get(i.get('loss_finite')),
                 i.get('linear_dtype'), i.get('step_ms'),
                 i.get('peak_mem_mib'), _fmt_status(i)]
                for i in items if i['section'] == section]
        if rows:
            lines += [f'## {title}', '', bu.markdown_table(
                ['config', 'model', 'px', 'batch', 'loss', 'finite',
                 'linear dtype', 'step ms', 'peak MiB', 'status'], rows),
                '']
    tp = [i for i in items if i['section'] == 'throughput']
    if tp:
        rows = []
        for i in tp:
            for r in i.get('runs', []):
                mfu = r.get('mfu')
                rows.append([
                    ps.NAMES[r['model']], r['size'], r['batch'],
                    r.get('images_per_s'), r.get('gflops_train_per_image'),
                    None if r.get('counted_over_analytic') is None else
                    f"{r['counted_over_analytic']:.4f}",
                    r.get('achieved_tflops'),
                    None if mfu is None else f'{100 * mfu:.1f}%',
                    r.get('peak_mem_mib'), r.get('error', 'ok')[:120]])
            if i['status'] == 'skipped':
                rows.append(['-', i['name'], None, None, None, None, None,
                             None, None, _fmt_status(i)])
        peak = env.get('peak_tflops')
        lines += ['## Pretraining throughput', '',
                  f'MFU against the dense bf16 peak, {peak} TFLOP/s.'
                  if peak else 'No MFU: no peak known for this device '
                  '(none for a CPU; --peak-tflops gives one).', '',
                  bu.markdown_table([
                      'model', 'px', 'batch', 'img/s', 'GFLOPs train/img',
                      'counted/analytic fwd', 'TFLOP/s', 'MFU', 'peak MiB',
                      'status'], rows), '', bu.FLOP_CONVENTION, '']
        if result['throughput_ratios']:
            lines += [bu.markdown_table(
                ['ratio', 'px', 'images/s ratio', 'train FLOPs ratio'],
                [[r['ratio'], r['size'], r['images_per_s_ratio'],
                  r['train_flops_ratio']]
                 for r in result['throughput_ratios']]), '']
    bad = [i for i in items if i['status'] in ('failed', 'error')]
    if bad:
        lines += ['## Failures', '']
        lines += [f"* {i['section']} `{i['name']}`: {i.get('error')}"
                  for i in bad]
        lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


# ------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    device = resolve(args)
    import mim_pretrain  # noqa: F401  registers models, fixes, wrappers
    bu.quiet_logs('gpu_check')
    bu.steady_cpu_allocator(device)
    os.makedirs(args.work_dir, exist_ok=True)
    sections = args.only or ['sdpa', 'pretrain', 'throughput', 'transfer']
    runner = Runner(args.budget_s, device)
    scale = 'tiny models' if args.tiny else 'full size'
    print(f'gpu_check on {device} ({scale}), autocast {args.amp}, budget '
          f'{args.budget_s:.0f} s', flush=True)
    with bu.run_context(args.threads, 'mmpretrain'):
        machine = bu.machine_record(device)
        env = runner.run('environment', 'environment',
                         lambda: environment(device, args), always=True)
        if 'sdpa' in sections:
            for kind, (desc, build) in sdpa_kinds(args.tiny).items():
                runner.run('sdpa', kind,
                           lambda b=build: sdpa_check(b, device, args.amp,
                                                      args.seed),
                           description=desc)
        if 'pretrain' in sections:
            for path in pretrain_configs():
                runner.run('pretrain', path,
                           lambda p=path: pretrain_step(p, device, args),
                           config=path)
        if 'throughput' in sections:
            for size in args.throughput_sizes:
                runner.run('throughput', f'{size} px',
                           lambda s=size: throughput_size(s, device, args))
    if 'transfer' in sections:
        for task, path in transfer_configs():
            scope = ts.TASKS[task]['scope']
            with bu.run_context(args.threads, scope):
                runner.run('transfer', path,
                           lambda t=task, p=path: transfer_step(
                               t, p, device, args),
                           task=task, config=path)
    machine['loadavg_end'] = list(os.getloadavg())
    if args.threads:
        machine['threads'] = args.threads
    items = runner.items
    summary = {s: sum(i['status'] == s for i in items)
               for s in ('passed', 'failed', 'error', 'skipped')}
    summary['elapsed_s'] = runner.elapsed()
    result = dict(
        machine=machine, args=vars(args),
        environment=env.get('environment', {}), items=items,
        throughput_ratios=throughput_ratios(
            [i for i in items if i['section'] == 'throughput']),
        summary=summary)
    base = osp.join(args.work_dir, 'gpu_check')
    bu.write_json(base + '.json', result)
    write_markdown(base + '.md', result)
    for r in result['throughput_ratios']:
        print(f"{r['ratio']} at {r['size']} px: images/s ratio "
              f"{r['images_per_s_ratio']:.3f} (train FLOPs ratio "
              f"{r['train_flops_ratio']:.3f})")
    print(f"{summary['passed']} passed, {summary['failed']} failed, "
          f"{summary['error']} raised, {summary['skipped']} skipped in "
          f"{summary['elapsed_s']:.0f} s; wrote {base}.json, .md",
          flush=True)
    return result


def cli(argv: Optional[List[str]] = None) -> None:
    """Run :func:`main` and exit with its status.

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Raises:
        SystemExit: Always; code 1 when an item failed or raised, else 0.
    """
    res = main(argv)
    sys.exit(1 if res['summary']['failed'] or res['summary']['error']
             else 0)


if __name__ == '__main__':
    cli()
