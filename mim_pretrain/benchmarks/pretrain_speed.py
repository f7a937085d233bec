"""Pretraining cost of LoMaR, LocalMIM and mmpretrain's MAE, side by side.

    python tools/benchmarks/pretrain_speed.py [--models lomar localmim mae]
        [--arch b] [--sizes 224 384 448 896] [--batch 2] [--batch-at 896=1]
        [--warmup 1] [--repeats 3] [--device cpu|cuda] [--amp none|bf16|fp16]
        [--threads N] [--profile] [--work-dir work_dirs/benchmarks]

Every model is built from the project's real config with ``MODELS.build``;
only the input size (and what it implies: the size of MAE's fixed sin-cos
position grid and of its decoder's) and the batch are changed. All models use
the same AdamW and the real training step, ``model.train_step`` (the data
preprocessor's normalisation, forward, loss, backward, optimizer step), on
random uint8 images already on the device (no data loading). In one run,
for every model and input size, it measures the step time (median of
``--repeats`` after ``--warmup``), images/s, peak memory, and FLOPs per image
counted by PyTorch's FLOP counter (forward and forward + backward), checks
the forward count against an analytic per-block formula, and, with a known
GPU, the model FLOPs utilisation. It writes ``pretrain_speed.json``,
``pretrain_speed.md`` and ``pretrain_speed.png`` (cost against resolution)
under ``--work-dir``, and the step-time ratios against the targets of
docs/benchmarks.md.
"""
import argparse
import copy
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch

from . import common as bu

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name -> title and the real config per arch ('mmpretrain::' = the
# installed mmpretrain's own config)
MODELS_TABLE = {
    'lomar': ('LoMaR', dict(
        b='mmpretrain_configs/lomar/'
        'lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py',
        l='mmpretrain_configs/lomar/'
        'lomar_vit-large-p16_4xb256-accum4-amp-coslr-400e_in1k.py')),
    'localmim': ('LocalMIM', dict(
        b='mmpretrain_configs/localmim/'
        'localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py',
        l='mmpretrain_configs/localmim/'
        'localmim_vit-large-p16_8xb512-amp-coslr-800e_in1k.py')),
    # LoMaR with the iRPE bias switched off: the bias's share of a step
    'lomar-no-irpe': ('LoMaR without iRPE', dict(
        b='mmpretrain_configs/lomar/'
        'lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py',
        l='mmpretrain_configs/lomar/'
        'lomar_vit-large-p16_4xb256-accum4-amp-coslr-400e_in1k.py')),
    'mae': ('MAE (mmpretrain)', dict(
        b='mmpretrain_configs/mae/'
        'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
        l='mmpretrain_configs/mae/'
        'mae_vit-large-p16_8xb512-amp-coslr-400e_in1k.py')),
    'localmim-swin': ('LocalMIM-Swin', dict(
        b='mmpretrain_configs/localmim/'
        'localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py')),
    'simmim-swin': ('SimMIM-Swin (mmpretrain)', dict(
        b='mmpretrain::simmim/'
        'simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py')),
}
NAMES = {k: v[0] for k, v in MODELS_TABLE.items()}
VIT_MODELS = ('lomar', 'localmim', 'mae')
# 't' (smoke runs): DeiT-Tiny widths on the ViT-B configs, Swin-T on the
# Swin-B ones
TINY = dict(embed_dims=192, depth=12, num_heads=3)
SWIN_TINY_DIMS = (192, 384, 768, 768)  # Swin-T channels after each merge

# (name, numerator, denominator, size, size of the denominator, limit,
# what the limit bounds)
TARGETS = (
    ('LocalMIM / MAE at 224', 'localmim', 'mae', 224, 224, 0.60, 'ratio'),
    ('LoMaR / MAE at 448', 'lomar', 'mae', 448, 448, 0.40, 'ratio'),
    ('iRPE share of a LoMaR step at 224', 'lomar', 'lomar-no-irpe', 224, 224,
     0.10, 'share'),
    ('LoMaR 448 / LoMaR 224', 'lomar', 'lomar', 448, 224, 1.2, 'ratio'),
    ('LoMaR / MAE at 224 vs FLOPs ratio', 'lomar', 'mae', 224, 224, 0.10,
     'flops_dev'),
)

# fused, as every config's AdamW: one kernel for the whole update
OPTIMIZER = dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05,
                 fused=True)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pretraining step cost of LoMaR, LocalMIM and MAE '
        'against the input resolution')
    parser.add_argument('--models', nargs='+',
                        default=[*VIT_MODELS, 'lomar-no-irpe'],
                        choices=list(NAMES),
                        help='default: the ViT trio; add localmim-swin '
                        'simmim-swin for the Swin pair')
    parser.add_argument('--arch', default='b', choices=['b', 'l', 't'],
                        help="ViT size: the ViT-B or ViT-L configs; 't' = "
                        'DeiT-Tiny widths on the ViT-B configs, Swin-T for '
                        'the Swin pair (smoke runs)')
    parser.add_argument('--sizes', nargs='+', type=int,
                        default=[224, 384, 448, 896])
    parser.add_argument('--batch', type=int, default=2,
                        help='images per step, the same for every model')
    parser.add_argument('--batch-at', nargs='*', default=['896=1'],
                        metavar='SIZE=BATCH',
                        help='another batch at a given size (default: 1 at '
                        '896 px, for CPU runs); pass nothing to disable')
    bu.add_common_args(parser, repeats=3)
    parser.add_argument('--profile', action='store_true',
                        help='also profile one step of every run with '
                        'torch.profiler (tables under the work dir)')
    args = parser.parse_args(argv)
    try:
        args.batch_at = {
            int(k): int(v)
            for k, v in (item.split('=') for item in args.batch_at)
        }
    except ValueError:
        parser.error(f'--batch-at takes SIZE=BATCH items, got '
                     f'{args.batch_at}')
    if args.warmup < 1 or args.repeats < 1:
        parser.error('--warmup and --repeats must be >= 1')
    if min(args.sizes) < 1 or args.batch < 1 or min(
            args.batch_at.values(), default=1) < 1:
        parser.error('sizes and batches must be positive')
    return args


def config_path(name: str, arch: str) -> str:
    """The config file of ``name`` for ``arch``; a clear error if none."""
    table = MODELS_TABLE[name][1]
    key = 'b' if arch == 't' else arch
    if key not in table:
        raise ValueError(f'{name} has no config for arch {arch!r} (has '
                         f'{sorted(table)})')
    path = table[key]
    # upstream configs stay 'mmpretrain::...' (mmengine.hub finds them)
    return path if '::' in path else osp.join(REPO, path)


def model_config(name: str, arch: str, size: int) -> Tuple[dict, dict]:
    """The model config of ``name`` from its real config file, for ``size``.

    Returns:
        tuple: dict(path=..., model=...) and the keys changed from the file.
    """
    from mmengine.config import Config
    from mmengine.hub import get_config
    path = config_path(name, arch)
    cfg = get_config(path) if '::' in path else Config.fromfile(path)
    model = copy.deepcopy(cfg.model.to_dict())
    model.setdefault('data_preprocessor',
                     copy.deepcopy(cfg.get('data_preprocessor')))
    changed = {}

    def change(key: str, value) -> None:
        *parents, leaf = key.split('.')
        node = model
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
        changed[key] = value

    if arch == 't':
        dims = TINY['embed_dims']
        if name == 'mae':
            change('backbone.arch', dict(
                embed_dims=dims, num_layers=TINY['depth'],
                num_heads=TINY['num_heads'], feedforward_channels=4 * dims))
            change('neck.embed_dim', dims)
        elif name in ('lomar', 'lomar-no-irpe'):
            change('backbone.arch', dict(TINY))
            change('head.embed_dims', dims)
        elif name == 'localmim':
            change('backbone.arch', dict(TINY))
            change('neck.in_dims', dims)
        elif name == 'localmim-swin':
            change('backbone.arch', 'tiny')
            change('neck.in_dims', SWIN_TINY_DIMS)
        else:
            change('backbone.arch', 'tiny')
            change('neck.in_channels', SWIN_TINY_DIMS[-1])
    if name == 'lomar-no-irpe':
        change('backbone.irpe', None)
    if name == 'mae':
        # mmpretrain's MAE makes its fixed sin-cos grids for img_size
        patch = model['backbone'].get('patch_size', 16)
        change('backbone.img_size', size)
        change('neck.num_patches', (size // patch)**2)
    if name == 'simmim-swin':
        if size % 32:
            raise ValueError(f'SimMIM masks 32-px units: {size} px is not '
                             'a multiple of 32')
        # the LocalMIM-Swin window (7), and the position grid for the size
        change('backbone.img_size', size)
        change('backbone.stage_cfgs', dict(block_cfgs=dict(window_size=7)))
    return dict(path=osp.relpath(path, REPO), model=model), changed


def build_model(model_cfg: dict, device: torch.device) -> torch.nn.Module:
    """Build and initialise a pretraining model with mmpretrain's registry.
    """
    from mmpretrain.registry import MODELS
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    return model.to(device).train()


def build_optim_wrapper(model: torch.nn.Module, amp: str):
    """The same AdamW for every model, in the wrapper training uses."""
    from mmengine.optim import build_optim_wrapper as build
    return build(model, bu.optim_wrapper_cfg(OPTIMIZER, amp))


def make_batch(name: str, batch: int, size: int,
               device: torch.device) -> dict:
    """Random uint8 images as the data loader collates them, on device;
    SimMIM's data samples carry the mask its pipeline would make."""
    from mmpretrain.registry import TRANSFORMS
    from mmpretrain.structures import DataSample
    imgs = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                         device=device)
    samples = [DataSample() for _ in range(batch)]
    if name == 'simmim-swin':
        gen = TRANSFORMS.build(
            dict(type='SimMIMMaskGenerator', input_size=size,
                 mask_patch_size=32, model_patch_size=4, mask_ratio=0.6))
        for sample in samples:
            sample.set_mask(
                torch.from_numpy(gen.transform({})['mask']).to(device))
    return dict(inputs=imgs, data_samples=samples)


def count_step_flops(model, data: dict, optim_wrapper) -> Tuple[int, int]:
    """FLOPs of one step's forward and of its forward + backward."""
    with bu.flop_counter_mode() as counter:
        with optim_wrapper.optim_context(model):
            inputs = model.data_preprocessor(data, True)
            losses = model(**inputs, mode='loss')
        forward = counter.get_total_flops()
        loss, _ = model.parse_losses(losses)
        loss.backward()
        total = counter.get_total_flops()
    optim_wrapper.zero_grad()
    return forward, total


# ---------------------------------------------------------------- analytic


def block_flops(tokens: int, dims: int, hidden: int) -> int:
    """Forward matmul FLOPs of one ViT block on ``tokens`` tokens.

    qkv ``2 L C 3C`` + q k^T ``2 L^2 C`` + attn v ``2 L^2 C`` + proj
    ``2 L C^2`` + MLP ``2 * 2 L C hidden``.
    """
    return tokens * (8 * dims * dims + 4 * dims * hidden) + \
        4 * tokens * tokens * dims


def linear_flops(tokens: int, cin: int, cout: int) -> int:
    return 2 * tokens * cin * cout


def analytic_flops(name: str, model, size: int) -> Optional[Dict[str, int]]:
    """Forward FLOPs per image by formula, part by part (ViT models; None
    for the others).

    Counts the same ops as the counter (matmuls, convolutions, attention),
    from the hyper-parameters of the built model.
    """
    if name not in (*VIT_MODELS, 'lomar-no-irpe'):
        return None  # the ViT formula; Swin models are counted only
    bb = model.backbone
    if name == 'mae':
        dims, depth = bb.embed_dims, bb.num_layers
        hidden = bb.layers[0].ffn.layers[0][0].out_features
        patch = bb.patch_embed.projection.kernel_size[0]
    else:
        dims, depth = bb.embed_dims, bb.depth
        hidden = bb.blocks[0].mlp.fc1.out_features
        patch = bb.patch_size
    n = (size // patch)**2
    pix = 3 * patch * patch
    parts = dict(patch_embed=linear_flops(n, pix, dims))
    if name.startswith('lomar'):
        win = bb.window_size**2
        # only the window patches are embedded
        parts['patch_embed'] = linear_flops(bb.num_windows * win, pix, dims)
        parts['encoder'] = bb.num_windows * depth * block_flops(
            1 + win, dims, hidden)
        # q . w for every bucket, every head: 2 L (heads * head_dim) buckets
        rpe = bb.blocks[0].attn.rpe_k
        parts['irpe'] = 0 if rpe is None else bb.num_windows * depth * \
            linear_flops(1 + win, dims, rpe.num_buckets)
        parts['head'] = linear_flops(bb.num_windows * win, dims, pix)
        return parts
    keep = int(n * (1 - bb.mask_ratio))
    parts['encoder'] = depth * block_flops(1 + keep, dims, hidden)
    if name == 'mae':
        neck = model.neck
        ddims = neck.decoder_embed.out_features
        dhidden = neck.decoder_blocks[0].ffn.layers[0][0].out_features
        parts['decoder'] = linear_flops(1 + keep, dims, ddims) + len(
            neck.decoder_blocks) * block_flops(1 + n, ddims, dhidden)
        parts['head'] = linear_flops(1 + n, ddims, pix)
        return parts
    # LocalMIM: one decoder per tap (embed, one block on all tokens, scale
    # head), and the HOG target's two 3x3 depthwise Sobel convs (once: the
    # histogram serves every tap)
    parts['decoders'] = parts['scale_heads'] = parts['targets'] = 0
    target = model.target_generator
    if hasattr(target, 'weight_x'):
        parts['targets'] = 2 * 2 * target.in_channels * 9 * size * size
    for dec in model.neck.decoders:
        ddims = dec.dims
        out = dec.pred[-1].out_channels
        parts['decoders'] += linear_flops(1 + keep, dims, ddims) + \
            block_flops(1 + n, ddims, dec.block.mlp.fc1.out_features)
        if dec.scale == 4:
            heads = (linear_flops(4 * n, ddims, ddims // 2) +
                     linear_flops(16 * n, ddims // 2, ddims // 4) +
                     linear_flops(16 * n, ddims // 4, out))
        elif dec.scale == 2:
            heads = (linear_flops(4 * n, ddims, ddims // 2) +
                     linear_flops(4 * n, ddims // 2, out))
        elif dec.scale == 1:
            heads = linear_flops(n, ddims, out)
        else:
            heads = linear_flops(int(n * dec.scale**2), ddims, out)
        parts['scale_heads'] += heads
    return parts


# --------------------------------------------------------------- the runs


class Entry:
    """One model at one size: built, warmed up and its memory measured.

    The peak memory covers building the model and the warm-up steps (the
    first step allocates the gradients and AdamW's state), measured while
    no other model runs.
    """

    def __init__(self, name: str, arch: str, size: int, batch: int,
                 device: torch.device, args) -> None:
        self.name, self.size, self.batch = name, size, batch
        cfg, changed = model_config(name, arch, size)
        memory = bu.PeakMemory(device)
        memory.start()
        torch.manual_seed(args.seed)
        self.model = build_model(cfg['model'], device)
        self.optim_wrapper = build_optim_wrapper(self.model, args.amp)
        self.data = make_batch(name, batch, size, device)
        for _ in range(args.warmup):
            self.step()
        bu.synchronize(device)
        self.record = dict(
            model=name, config=cfg['path'], changed=changed, size=size,
            batch=batch,
            params_m=sum(p.numel() for p in self.model.parameters()) / 1e6,
            peak_mem_mib=memory.peak_mib(), mem_method=memory.method)

    def step(self) -> None:
        self.model.train_step(self.data, self.optim_wrapper)

    def count_flops(self, device: torch.device, args) -> None:
        fwd, total = count_step_flops(self.model, self.data,
                                      self.optim_wrapper)
        parts = analytic_flops(self.name, self.model, self.size)
        rec, b = self.record, self.batch
        rec.update(
            gflops_fwd_per_image=fwd / b / 1e9,
            gflops_train_per_image=total / b / 1e9,
            achieved_tflops=total / rec['median_s'] / 1e12)
        if parts is not None:
            analytic = sum(parts.values())
            rec.update(
                gflops_fwd_analytic_per_image=analytic / 1e9,
                analytic_parts_gflops={k: v / 1e9
                                       for k, v in parts.items()},
                counted_over_analytic=fwd / b / analytic)
        peak_tf = bu.peak_tflops(device, args.peak_tflops)
        rec['mfu'] = rec['achieved_tflops'] / peak_tf if peak_tf else None


def run_size(size: int, batch: int, device: torch.device,
             args) -> List[dict]:
    """Every model at one size: build and warm up each, time them
    interleaved, then count FLOPs (and profile)."""
    entries, records = [], []
    for name in args.models:
        try:
            entries.append(Entry(name, args.arch, size, batch, device,
                                 args))
        except ValueError as err:  # the model refuses this input size
            print(f'{NAMES[name]} at {size} px: not run: {err}')
            records.append(dict(model=name, size=size, batch=batch,
                                error=str(err)))
            bu.release_memory(device)
    timings = bu.time_interleaved([e.step for e in entries], device,
                                  args.repeats) if entries else []
    for entry, timing in zip(entries, timings):
        rec = entry.record
        rec.update(timing, images_per_s=batch / timing['median_s'],
                   ms_per_image=1e3 * timing['median_s'] / batch,
                   cpu_ms_per_image=1e3 * timing['cpu_median_s'] / batch)
        if not args.no_flops:
            entry.count_flops(device, args)
        if args.profile:
            rec['profile'] = profile_step(entry.model, entry.data,
                                          entry.optim_wrapper, device,
                                          args.work_dir,
                                          f'{entry.name}_{size}')
        records.append(rec)
    del entries
    bu.release_memory(device)
    return records


def profile_step(model, data, optim_wrapper, device, work_dir: str,
                 tag: str) -> str:
    """torch.profiler table of one step, by self time; returns its path."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        acts.append(ProfilerActivity.CUDA)
    with profile(activities=acts) as prof:
        model.train_step(data, optim_wrapper)
        bu.synchronize(device)
    key = ('self_cuda_time_total'
           if device.type == 'cuda' else 'self_cpu_time_total')
    path = osp.join(work_dir, 'profiles', f'pretrain_{tag}.txt')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(prof.key_averages().table(sort_by=key, row_limit=30))
    return osp.relpath(path, work_dir)


def find(records: List[dict], name: str, size: int) -> Optional[dict]:
    for rec in records:
        if rec['model'] == name and rec['size'] == size and \
                'error' not in rec:
            return rec
    return None


def compare(a: dict, b: dict) -> dict:
    """Per-image cost of ``a`` over ``b``: wall time, process CPU time and
    counted training FLOPs."""
    out = dict(time_ratio=a['ms_per_image'] / b['ms_per_image'],
               cpu_time_ratio=(a['cpu_median_s'] / a['batch']) /
               (b['cpu_median_s'] / b['batch']),
               batch=[a['batch'], b['batch']])
    if 'gflops_train_per_image' in a and 'gflops_train_per_image' in b:
        out['flops_ratio'] = (a['gflops_train_per_image'] /
                              b['gflops_train_per_image'])
    return out


def check_targets(records: List[dict]) -> List[dict]:
    """Step-time ratios (per image, same run) against the targets, and the
    Swin pair's ratio at every size (no target)."""
    out = []
    for title, num, den, size, den_size, limit, kind in TARGETS:
        a, b = find(records, num, size), find(records, den, den_size)
        if a is None or b is None:
            continue
        item = dict(target=title, limit=limit, kind=kind, **compare(a, b))
        if kind == 'ratio':
            item['met'] = item['time_ratio'] <= limit
        elif kind == 'share':  # (with - without) / with
            item['share'] = 1 - 1 / item['time_ratio']
            item['met'] = item['share'] <= limit
        elif 'flops_ratio' in item:
            item['deviation'] = item['time_ratio'] / item['flops_ratio'] - 1
            item['met'] = abs(item['deviation']) <= limit
        out.append(item)
    for size in sorted({r['size'] for r in records}):
        a = find(records, 'localmim-swin', size)
        b = find(records, 'simmim-swin', size)
        if a is not None and b is not None:
            out.append(dict(target=f'LocalMIM-Swin / SimMIM-Swin at {size}',
                            limit=None, kind='info', **compare(a, b)))
    return out


def write_markdown(path: str, result: dict) -> None:
    rows = []
    for r in result['runs']:
        if 'error' in r:
            rows.append([NAMES[r['model']], r['size'], r['batch'],
                         f"not run: {r['error']}"] + [None] * 9)
            continue
        ratio = r.get('counted_over_analytic')
        rows.append([
            NAMES[r['model']], r['size'], r['batch'], 1e3 * r['median_s'],
            1e3 * r['cpu_median_s'], r['images_per_s'], r['peak_mem_mib'],
            r.get('gflops_fwd_per_image'),
            r.get('gflops_fwd_analytic_per_image'),
            None if ratio is None else f'{ratio:.4f}',
            r.get('gflops_train_per_image'), r.get('achieved_tflops'),
            None if r.get('mfu') is None else f'{100 * r["mfu"]:.1f}%'
        ])
    args = result['args']
    lines = [
        '# Pretraining step cost', '',
        f"Machine: {bu.machine_line(result['machine'])}. Arch "
        f"{args['arch']}, autocast {args['amp']}, median of "
        f"{args['repeats']} steps (interleaved across models) after "
        f"{args['warmup']} warm-up.", '',
        bu.markdown_table([
            'model', 'px', 'batch', 'step ms', 'CPU-time ms', 'img/s',
            'peak MiB', 'GFLOPs fwd/img (counted)',
            'GFLOPs fwd/img (analytic)', 'counted/analytic',
            'GFLOPs train/img', 'TFLOP/s', 'MFU'
        ], rows), '', bu.FLOP_CONVENTION, ''
    ]
    if result['targets']:
        trows = []
        for t in result['targets']:
            bound = {
                'ratio': f"<= {t['limit']}",
                'share': f"share <= {t['limit']}",
                'flops_dev': f"within {100 * (t['limit'] or 0):.0f}% of "
                'FLOPs ratio',
                'info': '-'
            }[t['kind']]
            trows.append([
                t['target'], t['time_ratio'], t['cpu_time_ratio'],
                t.get('flops_ratio'), bound,
                t.get('deviation', t.get('share')),
                {True: 'met', False: 'missed'}.get(t.get('met'), '-')
            ])
        lines += ['## Ratios (per image, same run; targets on step time)',
                  '', bu.markdown_table([
                      'ratio', 'step time', 'CPU time', 'train FLOPs',
                      'target', 'time/FLOPs - 1 (share)', 'status'
                  ], trows), '', bu.FLOP_CONVENTION, '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


def write_plot(path: str, result: dict) -> None:
    """Time, FLOPs and memory per image against the input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [('ms_per_image', 'step time per image (ms)'),
              ('gflops_train_per_image', 'train GFLOPs per image'),
              ('peak_mem_mib', 'peak memory (MiB)')]
    if result['machine']['device'] == 'cpu':
        # the work done, whatever share of a shared CPU the run got
        panels.insert(1, ('cpu_ms_per_image', 'CPU time per image (ms)'))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4))
    for ax, (key, label) in zip(axes, panels):
        for name in result['args']['models']:
            pts = sorted((r['size'], r[key]) for r in result['runs']
                         if r['model'] == name and r.get(key) is not None)
            if pts:
                ax.plot(*zip(*pts), marker='o', label=NAMES[name])
        ax.set_xlabel('input size (px)')
        ax.set_ylabel(label)
        ax.set_yscale('log')
        ax.grid(True, which='both', alpha=.3)
    axes[0].legend()
    m = result['machine']
    fig.suptitle(f"pretraining, arch {result['args']['arch']}, "
                 f"{m['device_name']} ({m['device']}), "
                 f"amp {result['args']['amp']}, {m['date'][:10]}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    device = bu.resolve_device(args)
    import mim_pretrain  # noqa: F401  registers the models
    bu.quiet_logs('pretrain_speed')
    bu.steady_cpu_allocator(device)
    os.makedirs(args.work_dir, exist_ok=True)
    with bu.run_context(args.threads, 'mmpretrain'):
        machine = bu.machine_record(device)
        runs = []
        for size in args.sizes:
            batch = args.batch_at.get(size, args.batch)
            for rec in run_size(size, batch, device, args):
                runs.append(rec)
                if 'error' not in rec:
                    print_run(rec)
    machine['loadavg_end'] = list(os.getloadavg())
    result = dict(machine=machine, args=vars(args), runs=runs,
                  targets=check_targets(runs))
    base = osp.join(args.work_dir, 'pretrain_speed')
    bu.write_json(base + '.json', result)
    write_markdown(base + '.md', result)
    write_plot(base + '.png', result)
    for t in result['targets']:
        print(f"{t['target']}: time {t['time_ratio']:.3f}, CPU time "
              f"{t['cpu_time_ratio']:.3f}"
              + (f", FLOPs {t['flops_ratio']:.3f}" if 'flops_ratio' in t
                 else '') + f" -> {t.get('met', '-')}")
    print(f'wrote {base}.json, .md, .png')
    return result


def print_run(rec: dict) -> None:
    line = (f"{NAMES[rec['model']]:>17} {rec['size']:4d}px batch "
            f"{rec['batch']}: {1e3 * rec['median_s']:9.1f} ms/step "
            f"{rec['images_per_s']:8.2f} img/s peak "
            f"{rec['peak_mem_mib'] or 0:8.0f} MiB")
    if 'gflops_train_per_image' in rec:
        line += f" {rec['gflops_train_per_image']:8.1f} GFLOPs/img"
    if 'counted_over_analytic' in rec:
        line += (f" (fwd counted/analytic "
                 f"{rec['counted_over_analytic']:.3f})")
    print(line, flush=True)


if __name__ == '__main__':
    main()
