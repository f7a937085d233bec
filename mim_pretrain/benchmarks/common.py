"""What the benchmark tools share: the machine record, step timing, peak
memory, FLOP counting and the output files.

Imported by the other modules of :mod:`mim_pretrain.benchmarks`
(``pretrain_speed``, ``transfer_speed``, ``gpu_check``).
"""
import contextlib
import ctypes
import datetime
import gc
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.utils.flop_counter as flop_counter

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors'
# data sheets; matched against torch.cuda.get_device_name() in this order.
BF16_PEAK_TFLOPS = (
    ('H200', 989.4),
    ('H100 PCIe', 756.0),
    ('H100', 989.4),  # SXM and NVL report "H100 80GB HBM3" / "H100 NVL"
    ('A100', 312.0),
    ('L40S', 362.05),
    ('A10G', 70.0),
)


def add_common_args(parser, repeats: int) -> None:
    """The options both tools share."""
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed steps per model (>= 1: the peak '
                        'memory is taken over them)')
    parser.add_argument('--repeats', type=int, default=repeats,
                        help='timed steps per model (interleaved)')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--amp', default=None,
                        choices=['none', 'bf16', 'fp16'],
                        help='autocast dtype (default: bf16 on cuda, none '
                        'on cpu)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: 1 on CPU, '
                        "torch's default on GPU)")
    parser.add_argument('--no-flops', action='store_true',
                        help='skip the FLOP count')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='device peak for MFU (default: the bf16 dense '
                        'peak of a known GPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/benchmarks')


def resolve_device(args) -> torch.device:
    """The device of ``args.device`` (default: cuda when present), with the
    defaults that follow from it filled into ``args``: ``amp`` bf16 on
    cuda, none on CPU; ``threads`` 1 on CPU. Autocast runs on either
    (``MixedPrecisionOptimWrapper``)."""
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    if args.amp is None:
        args.amp = 'bf16' if device.type == 'cuda' else 'none'
    if args.threads is None and device.type == 'cpu':
        # on a shared CPU, more than one thread stalls at OpenMP barriers
        # whenever a peer thread is descheduled (docs/benchmarks.md)
        args.threads = 1
    return device


def optim_wrapper_cfg(optimizer: dict, amp: str) -> dict:
    """mmengine optimizer-wrapper config for ``optimizer`` under ``amp``:
    the toolkit's ``MixedPrecisionOptimWrapper``, as the AMP configs (bf16
    without a loss scale, so no per-step overflow check and host sync; fp16
    with a dynamic one); 'none' is the plain ``OptimWrapper`` (fp32).
    """
    if amp == 'none':
        return dict(type='OptimWrapper', optimizer=dict(optimizer))
    dtype = dict(bf16='bfloat16', fp16='float16')[amp]
    return dict(type='MixedPrecisionOptimWrapper', dtype=dtype,
                loss_scale='dynamic', optimizer=dict(optimizer))


def peak_tflops(device: torch.device,
                override: Optional[float] = None) -> Optional[float]:
    """The device's dense bf16 peak (TFLOP/s) for MFU, or None (CPU, an
    unknown GPU) unless ``override`` gives it."""
    if override is not None:
        return override
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_PEAK_TFLOPS:
        if key in name:
            return value
    return None


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else the platform's name)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024**2  # glibc's ceiling on 64-bit hosts
_allocator = 'default'


def steady_cpu_allocator(device: torch.device) -> str:
    """Give every model of a CPU run the same allocator behaviour.

    glibc raises its mmap threshold each time a large block is freed, so
    the first models a process times get fresh pages for their
    activations at every step (page faults, system time) while later ones
    reuse the heap. Measured at batch 8, 224 px: LoMaR, the first model
    timed, took 7985 ms per step, and 5909 ms with the thresholds fixed
    (LoMaR without iRPE: 6165 and 5625 ms), which turned a 5% iRPE share
    into 23%. On a CPU device with glibc this fixes the mmap threshold at
    its ceiling and stops heap trimming, for the rest of the process; call
    it before building models. Elsewhere it does nothing.

    Returns:
        What was set, for the machine record.
    """
    global _allocator
    if device.type != 'cpu':
        return _allocator
    try:  # glibc's name; mallopt returns 1 where it took the value
        libc = ctypes.CDLL('libc.so.6')
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1)
    except (OSError, AttributeError):  # not glibc
        ok = False
    if ok:
        _allocator = 'glibc: mmap threshold fixed at 32 MiB, no trimming'
    return _allocator


def machine_record(device: torch.device) -> dict:
    """Where and when the figures were taken, so contended runs show."""
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
            text=True, cwd=osp.dirname(osp.abspath(__file__)),
            timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    record = dict(
        date=datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        host=platform.node(),
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else cpu_name()),
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        threads=torch.get_num_threads(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
        allocator=_allocator,
        loadavg_start=list(os.getloadavg()),
        python=platform.python_version(),
        git_commit=commit)
    return record


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (a no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def release_memory(device: torch.device) -> None:
    """Free what the previous model left, so the next baseline is clean."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    else:
        try:  # give freed heap pages back, so RSS tracks live memory
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _rss_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory (MiB) above a baseline taken at :meth:`start`.

    CUDA: ``torch.cuda.max_memory_allocated`` (exact, tensors only). CPU:
    the process's resident-set high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs``) minus the resident set at the start, so it
    also holds allocator slack and first-touch library pages: a close
    estimate, not an exact tensor count. None where neither is available.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = None
        self.method = ('cuda.max_memory_allocated' if device.type == 'cuda'
                       else 'VmHWM-RSS (Linux)')

    def start(self) -> None:
        release_memory(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets VmHWM to the current RSS
            self.base = _rss_kb('VmRSS')
        except OSError:
            self.base = None

    def peak_mib(self) -> Optional[float]:
        if self.base is None:
            return None
        if self.device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated(self.device)
            return (peak - self.base) / 2**20
        hwm = _rss_kb('VmHWM')
        return None if hwm is None else (hwm - self.base) / 1024


def time_interleaved(steps: Sequence[Callable[[], object]],
                     device: torch.device,
                     repeats: int) -> List[Dict[str, object]]:
    """Time ``repeats`` rounds of every step, one step of each per round.

    Interleaving puts every model under the same background load (a shared
    machine's load drifts over minutes), so the ratios between models taken
    in one run compare like with like. Each timed step is bracketed by
    device synchronisation (CUDA), so a time is the whole step's. The
    process CPU time of each step is kept too: on a shared CPU it counts the
    work done rather than the time slices received.

    Returns:
        list: per step, ``times_s`` (wall, every round), ``median_s``,
        ``min_s`` and ``cpu_median_s`` (process CPU time, all threads).
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    wall: List[List[float]] = [[] for _ in steps]
    cpu: List[List[float]] = [[] for _ in steps]
    synchronize(device)
    for _ in range(repeats):
        for i, step in enumerate(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            synchronize(device)
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [
        dict(times_s=w, median_s=statistics.median(w), min_s=min(w),
             cpu_median_s=statistics.median(c)) for w, c in zip(wall, cpu)
    ]


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args,
                   out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape,
                            value_shape, *args, out_shape=None,
                            **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape,
                                                 key_shape, value_shape)


# said under every table of FLOPs the benchmarks write: their convention is
# not the model zoos' (tools/analysis/get_flops.py)
FLOP_CONVENTION = (
    'FLOPs here: 2 per multiply-add (PyTorch\'s FlopCounterMode: matmuls, '
    'convolutions, attention); "train" = forward + backward, "fwd" = '
    'forward only. The model-zoo convention (tools/analysis/get_flops.py: 1 '
    'multiply-add = 1 FLOP, forward only) gives about half the fwd figure.')


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """PyTorch's FLOP counter, also counting the CPU SDPA kernels.

    ``torch.utils.flop_counter`` knows the CUDA attention kernels but not
    ``_scaled_dot_product_flash_attention_for_cpu`` (and its backward),
    which CPU SDPA calls: without these entries attention would count 0.
    Counted: matmuls, convolutions (transposed too) and attention, 2 FLOPs
    per multiply-accumulate; elementwise ops, norms and softmax are not.
    """
    aten = torch.ops.aten
    mapping = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = \
            _sdpa_cpu_flop
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] \
            = _sdpa_cpu_backward_flop
    return flop_counter.FlopCounterMode(display=False, custom_mapping=mapping)


def write_json(path: str, payload: dict) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=2)


def markdown_table(header: Sequence[str], rows: List[Sequence]) -> str:
    """A GitHub markdown table; floats get 3 significant digits."""

    def fmt(v):
        if v is None:
            return '-'
        if isinstance(v, float):
            return f'{v:.0f}' if abs(v) >= 100 else f'{v:.3g}'
        return str(v)

    lines = ['| ' + ' | '.join(header) + ' |',
             '| ' + ' | '.join('---' for _ in header) + ' |']
    lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def machine_line(machine: dict) -> str:
    """One markdown line naming the machine of a result file."""
    load = machine.get('loadavg_start')
    load_end = machine.get('loadavg_end')
    return (f"{machine['date']}, {machine['device_name']} "
            f"({machine['device']}), torch {machine['torch']}, "
            f"{machine['threads']} threads, load average "
            f"{load[0]:.2f} at start"
            + (f', {load_end[0]:.2f} at end' if load_end else '')
            + f", commit {machine.get('git_commit')}")


@contextlib.contextmanager
def run_context(threads: Optional[int], scope: str):
    """The intra-op thread count (when given) and mmengine's default scope
    for a tool's run, both restored afterwards, so that calling a tool's
    ``main`` leaves the calling process as it was."""
    from mmengine.registry import DefaultScope
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            yield
    finally:
        torch.set_num_threads(before)


def quiet_logs(name: str) -> None:
    """Make the current mmengine logger WARNING-level: ``init_weights``
    otherwise logs every parameter of every model built."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance(name, log_level='WARNING')


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` ('none', 'bf16' or 'fp16')."""
    if amp == 'none':
        return torch.autocast(device.type, enabled=False)
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16)[amp]
    return torch.autocast(device.type, dtype=dtype)
