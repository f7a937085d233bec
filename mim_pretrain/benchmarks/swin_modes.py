"""Cost of LocalMIM-Swin's two encoder modes: time, peak memory, tokens.

    python tools/benchmarks/swin_modes.py [--config CFG] [--size 224] \
        [--batch 8] [--steps 5] [--warmup 2] [--repeats 1] \
        [--device cpu|cuda] [--amp] [--out FILE.json]

For each mode ('efficient': masked tokens dropped, Swin's windows over the
visible tokens only; 'simple': SimMIM-style mask token, every token through
the ordinary Swin) a fresh process builds the config's model (default: the
Swin-B HOG config) with that mode, and times on random images

* ``encoder``: forward + backward of the encoder alone (the part the modes
  change; its loss is the sum of the tap means);
* ``step``: forward + backward of the whole pretraining loss (encoder,
  decoders, targets), the time of one training step without the optimizer.

It also reports the peak memory of each (CUDA: the allocator's peak over
what the model holds; CPU: the growth of the process's peak resident set
over its size before the first step, each mode in its own process so that
one does not hide the other) and, per image and step, the tokens that
enter a qkv projection and the attention window slots (key positions,
padding included) summed over all blocks; the encoder's forward FLOPs per
image as torch's FlopCounterMode counts them (linear layers, convolutions;
on CPU it does not see the fused attention kernel) and, apart, the
attention matmuls' FLOPs over the window slots. Times are the median (and
the minimum, less sensitive to other load on the machine) of ``--steps``
timed steps after ``--warmup`` in each of ``--repeats`` processes per mode, the
modes alternating; the machine's load average is recorded with them.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT = (f'{REPO}/mmpretrain_configs/localmim/localmim_swin-base-w7_'
           '8xb256-amp-coslr-400e_in1k.py')
MODES = ('efficient', 'simple')
# what each mode's process runs (``python -m``): this module by its name,
# which is '__main__' when it runs that way itself
MODULE = 'mim_pretrain.benchmarks.swin_modes'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time, peak memory and attention tokens of the two '
        'LocalMIM-Swin encoder modes.')
    parser.add_argument('--config', default=DEFAULT,
                        help='a LocalMIMSwin pretraining config')
    parser.add_argument('--size', type=int, default=224, help='input side')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=1,
                        help='processes per mode, alternating')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast (CUDA)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--mode', choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _rss_mib() -> float:
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args) -> dict:
    """One mode, in this process."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import mim_pretrain  # noqa: F401
    from mim_pretrain.models.localmim_swin import WindowMSA
    cfg = Config.fromfile(args.config)
    cfg.model.backbone.mode = args.mode
    # true Swin windows in both modes (the simple mode has no authors'
    # geometry), so the two compute the same function
    cfg.model.backbone.geometry = 'swin'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    device = torch.device(args.device)
    model.init_weights()
    model.to(device).train()
    counts = {'qkv_tokens': 0, 'window_slots': 0, 'attention_gflops': 0}

    def count(module, inputs):
        x, windows = inputs
        counts['qkv_tokens'] += x.shape[1]
        counts['window_slots'] += windows.num * windows.size
        # q.k and attention x v over every slot pair: 2 x 2 FLOPs per MAC
        counts['attention_gflops'] += (4 * windows.num * windows.size**2 *
                                       x.shape[-1] / 1e9)

    for m in model.backbone.modules():
        if isinstance(m, WindowMSA):
            m.register_forward_pre_hook(count)
    torch.manual_seed(0)  # the same images and masks in both modes
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.amp):
            loss = model.loss(x, [])['loss']
        loss.backward()

    def encoder():
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.amp):
            taps = model.backbone(x)[0]
            loss = sum(t.float().mean() for t in taps)
        loss.backward()

    out = {'mode': args.mode}
    sync()
    base = _rss_mib()
    # the encoder first: the CPU peak (the process's peak resident set
    # since ``base``) only grows, and a step's peak includes the encoder's
    for name, fn in (('encoder', encoder), ('step', step)):
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        for _ in range(args.warmup):
            fn()
            model.zero_grad(set_to_none=True)
        sync()
        times = []
        counts.update(qkv_tokens=0, window_slots=0, attention_gflops=0)
        for _ in range(args.steps):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
        if device.type == 'cuda':
            peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        else:
            peak = _peak_rss_mib() - base
        out[f'{name}_times'] = times
        out[f'{name}_peak_mib'] = peak
        if name == 'encoder':
            # per image ([B, N, C] inputs, [1, K * L] layouts with the
            # shared mask), averaged over the timed steps' masks
            out.update({k: v / args.steps for k, v in counts.items()})
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model.backbone(x)
    out['counted_gflops'] = flops.get_total_flops() / args.batch / 1e9
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args)))
        return None
    runs = {mode: [] for mode in MODES}
    # the modes alternate, so that a change in the machine's other load
    # falls on both
    for _ in range(args.repeats):
        for mode in MODES:
            child = [sys.executable, '-m', MODULE,
                     *(sys.argv[1:] if argv is None else argv), '--mode',
                     mode]
            res = subprocess.run(child, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(
                    f'{mode} mode failed:\n{res.stderr[-3000:]}')
            runs[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
    rows = []
    for mode, results in runs.items():
        row = dict(results[0])
        for name in ('step', 'encoder'):
            times = [t for r in results for t in r[f'{name}_times']]
            del row[f'{name}_times']
            row[f'{name}_s'] = statistics.median(times)
            row[f'{name}_min_s'] = min(times)
            row[f'{name}_peak_mib'] = max(
                r[f'{name}_peak_mib'] for r in results)
        rows.append(row)
    meta = dict(config=osp.relpath(args.config, REPO), size=args.size,
                batch=args.batch, steps=args.steps, repeats=args.repeats,
                load_average=os.getloadavg(), device=args.device,
                amp=args.amp, torch=torch.__version__,
                threads=torch.get_num_threads())
    if args.device.startswith('cuda'):
        meta['gpu'] = torch.cuda.get_device_name(0)
    print(f'{meta["config"]}: {args.size} px, batch {args.batch}, '
          f'{args.device}{" bf16" if args.amp else ""}')
    print(f'{"mode":10} {"step s (min)":>15} {"step MiB":>9} '
          f'{"encoder s (min)":>16} {"enc MiB":>8} {"qkv tokens/img":>15} '
          f'{"window slots/img":>17} {"GFLOPs/img":>11} {"attn":>6}')
    for r in rows:
        step = f'{r["step_s"]:.3f} ({r["step_min_s"]:.3f})'
        enc = f'{r["encoder_s"]:.3f} ({r["encoder_min_s"]:.3f})'
        print(f'{r["mode"]:10} {step:>15} {r["step_peak_mib"]:9.0f} '
              f'{enc:>16} {r["encoder_peak_mib"]:8.0f} '
              f'{r["qkv_tokens"]:15.0f} {r["window_slots"]:17.0f} '
              f'{r["counted_gflops"]:11.2f} {r["attention_gflops"]:6.2f}')
    print('GFLOPs/img and attn: encoder forward, 2 FLOPs per multiply-add '
          "(PyTorch's FlopCounterMode), twice the model-zoo convention of "
          'tools/analysis/get_flops.py')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(meta=meta, results=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
