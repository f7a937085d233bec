"""The mmcv build decisions of tools/setup_env.sh, on a CPU.

Each test puts fake ``nvcc`` / ``nvidia-smi`` executables first on PATH (the
real NVIDIA tools, if any, are taken off it) and runs ``setup_env.sh --plan``,
which prints the plan and installs nothing. ``MIM_TORCH_CUDA`` stands in for
the venv's torch, so the tests do not depend on the torch installed.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'setup_env.sh')
BASH = shutil.which('bash') or '/bin/bash'
PY_TAG = f'cp{sys.version_info[0]}{sys.version_info[1]}'
TORCH = '2.12.1:13.0'  # torch.__version__ : torch.version.cuda
# variables of the caller's shell that would change the plan
SCRUB = ('CUDA_HOME', 'CUDA_PATH', 'TORCH_CUDA_ARCH_LIST', 'MIM_MMCV_CPU_ONLY',
         'MAX_JOBS', 'FORCE_CUDA', 'MIM_VENV', 'MIM_CACHE_DIR',
         'MIM_TORCH_CUDA', 'PYTHON', 'XDG_CACHE_HOME', 'CUDA_VISIBLE_DEVICES')


def _clean_path() -> list:
    """PATH without the folders holding a real nvcc or nvidia-smi."""
    return [d for d in os.environ.get('PATH', '').split(os.pathsep)
            if d and not any(osp.exists(osp.join(d, tool))
                             for tool in ('nvcc', 'nvidia-smi'))]


def _executable(path, text: str):
    path.write_text('#!/bin/sh\n' + textwrap.dedent(text))
    path.chmod(0o755)
    return path


def fake_toolkit(tmp_path, version: str, headers: bool = True):
    """A CUDA toolkit folder whose bin/nvcc reports ``version``."""
    root = tmp_path / f'cuda-{version}'
    (root / 'bin').mkdir(parents=True)
    if headers:
        (root / 'include').mkdir()
        (root / 'include' / 'cuda_runtime.h').write_text('')
    _executable(root / 'bin' / 'nvcc', f'''\
        case "$*" in
        *--version*)
            echo "nvcc: NVIDIA (R) Cuda compiler driver"
            echo "Cuda compilation tools, release {version}, V{version}.88" ;;
        *--dryrun*) echo '#$ TOP={root}/bin/..' >&2 ;;
        *) exit 1 ;;
        esac
        ''')
    return root


def fake_smi(tmp_path, *gpus: str, rc: int = 0):
    """A folder with an nvidia-smi listing ``gpus`` ("name, compute_cap")."""
    folder = tmp_path / 'smi'
    folder.mkdir()
    lines = ''.join(f'echo "{g}"\n' for g in gpus)
    _executable(folder / 'nvidia-smi', f'{lines}exit {rc}\n')
    return folder


def run_script(tmp_path, *args, path=(), **env):
    """Run the set-up script; returns (process, plan as a dict)."""
    full = {k: v for k, v in os.environ.items() if k not in SCRUB}
    full.update(PATH=os.pathsep.join([str(p) for p in path] + _clean_path()),
                MIM_VENV=str(tmp_path / 'venv'),
                MIM_CACHE_DIR=str(tmp_path / 'cache'),
                PYTHON=sys.executable, OMP_NUM_THREADS='1')
    full.update({k: str(v) for k, v in env.items()})
    proc = subprocess.run([BASH, SCRIPT, *args], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    plan = dict(line.split('=', 1) for line in proc.stdout.splitlines()
                if '=' in line)
    return proc, plan


def plan(tmp_path, path=(), torch=TORCH, **env):
    return run_script(tmp_path, '--plan', path=path, MIM_TORCH_CUDA=torch,
                      **env)


def cache(tmp_path, key: str) -> str:
    return str(tmp_path / 'cache' / 'wheels' / f'{PY_TAG}-{key}')


def assert_refused(proc, *words):
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert 'variant=' not in proc.stdout
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)


def test_cpu_without_nvcc_or_gpu(tmp_path):
    proc, p = plan(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert p['variant'] == 'cpu' and p['build'] == 'cpu'
    assert p['FORCE_CUDA'] == '0' and p['TORCH_CUDA_ARCH_LIST'] == ''
    assert p['cache'] == cache(tmp_path, 'torch2.12.1-cpu')
    assert p['nvcc'] == '' and p['gpu'].startswith('none')
    # all the cores, although OMP_NUM_THREADS=1 (GNU nproc would honour it)
    assert p['MAX_JOBS'] == str(len(os.sched_getaffinity(0)))


def test_max_jobs_from_the_environment(tmp_path):
    proc, p = plan(tmp_path, MAX_JOBS=3)
    assert proc.returncode == 0 and p['MAX_JOBS'] == '3'
    assert_refused(plan(tmp_path, MAX_JOBS='all')[0], "MAX_JOBS='all'")


@pytest.mark.parametrize('gpus, arches', [
    (['NVIDIA H200, 9.0'], '9.0'),
    (['NVIDIA H200, 9.0', 'NVIDIA H200, 9.0', 'NVIDIA A100-SXM4-80GB, 8.0'],
     '8.0;9.0'),
])
def test_cuda_build_for_the_visible_gpu(tmp_path, gpus, arches):
    toolkit = fake_toolkit(tmp_path, '13.0')
    proc, p = plan(tmp_path, path=[toolkit / 'bin', fake_smi(tmp_path, *gpus)])
    assert proc.returncode == 0, proc.stderr
    assert p['variant'] == 'cuda13.0' and p['FORCE_CUDA'] == '1'
    assert p['TORCH_CUDA_ARCH_LIST'] == arches
    sm = arches.replace(';', '_')
    assert p['build'] == f'cuda13.0-sm{sm}'
    assert p['cache'] == cache(tmp_path, f'torch2.12.1-cuda13.0-sm{sm}')
    assert p['CUDA_HOME'] == str(toolkit)
    assert 'NVIDIA H200 (9.0)' in p['gpu']


def test_user_arch_list_wins_and_changes_the_cache_key(tmp_path):
    path = [fake_toolkit(tmp_path, '13.0') / 'bin',
            fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    _, default = plan(tmp_path, path=path)
    proc, p = plan(tmp_path, path=path, TORCH_CUDA_ARCH_LIST='9.0 8.0')
    assert proc.returncode == 0, proc.stderr
    assert p['TORCH_CUDA_ARCH_LIST'] == '8.0;9.0' and p['FORCE_CUDA'] == '1'
    assert p['cache'] == cache(tmp_path, 'torch2.12.1-cuda13.0-sm8.0_9.0')
    assert p['cache'] != default['cache']
    # a list without the visible GPU's capability is built, with a warning
    _, p = plan(tmp_path, path=path, TORCH_CUDA_ARCH_LIST='8.0')
    assert p['build'] == 'cuda13.0-sm8.0' and 'will not run' in p['note']


def test_login_node_builds_cuda_ops_for_the_arch_list(tmp_path):
    toolkit = fake_toolkit(tmp_path, '13.0')
    proc, p = plan(tmp_path, path=[toolkit / 'bin'])  # nvcc, but no GPU
    assert proc.returncode == 0 and p['variant'] == 'cpu'
    assert 'TORCH_CUDA_ARCH_LIST' in p['note']
    proc, p = plan(tmp_path, path=[toolkit / 'bin'],
                   TORCH_CUDA_ARCH_LIST='8.0;9.0')
    assert proc.returncode == 0, proc.stderr
    assert p['build'] == 'cuda13.0-sm8.0_9.0' and p['FORCE_CUDA'] == '1'


def test_nvidia_smi_without_a_gpu_is_no_gpu(tmp_path):
    path = [fake_toolkit(tmp_path, '13.0') / 'bin',
            fake_smi(tmp_path, 'No devices were found', rc=6)]
    proc, p = plan(tmp_path, path=path)
    assert proc.returncode == 0, proc.stderr
    assert p['variant'] == 'cpu' and 'No devices were found' in p['gpu']


def test_refuses_nvcc_of_another_cuda_major(tmp_path):
    path = [fake_toolkit(tmp_path, '12.4') / 'bin',
            fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    proc, _ = plan(tmp_path, path=path)
    assert_refused(proc, 'CUDA 12.4', 'CUDA 13.0', 'CUDA 13 toolkit',
                   'CUDA_HOME', 'MIM_MMCV_CPU_ONLY=1', 'FAILED at step "plan"')
    # the same nvcc on a login node with an arch list: refused too
    proc, _ = plan(tmp_path, path=path[:1], TORCH_CUDA_ARCH_LIST='9.0')
    assert_refused(proc, 'CUDA 12.4', 'CUDA 13.0')


def test_refuses_a_gpu_without_nvcc(tmp_path):
    proc, _ = plan(tmp_path, path=[fake_smi(tmp_path, 'NVIDIA H200, 9.0')])
    assert_refused(proc, 'NVIDIA H200', 'no nvcc', 'CUDA 13 toolkit',
                   'CUDA_HOME', 'MIM_MMCV_CPU_ONLY=1')
    proc, _ = plan(tmp_path, TORCH_CUDA_ARCH_LIST='9.0')  # no GPU, no nvcc
    assert_refused(proc, 'no nvcc', 'TORCH_CUDA_ARCH_LIST')


def test_refuses_cuda_ops_against_a_cpu_torch(tmp_path):
    path = [fake_toolkit(tmp_path, '13.0') / 'bin',
            fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    proc, _ = plan(tmp_path, path=path, torch='2.12.1+cpu:none')
    assert_refused(proc, 'torch.version.cuda is None', 'MIM_MMCV_CPU_ONLY=1')


def test_cpu_only_opt_out(tmp_path):
    smi = fake_smi(tmp_path, 'NVIDIA H200, 9.0')
    toolkit = fake_toolkit(tmp_path, '13.0')
    for path in ([smi], [toolkit / 'bin', smi]):
        proc, p = plan(tmp_path, path=path, MIM_MMCV_CPU_ONLY=1)
        assert proc.returncode == 0, proc.stderr
        assert p['variant'] == 'cpu' and p['FORCE_CUDA'] == '0'
        assert p['cache'] == cache(tmp_path, 'torch2.12.1-cpu')
    assert_refused(plan(tmp_path, MIM_MMCV_CPU_ONLY='yes')[0],
                   'MIM_MMCV_CPU_ONLY')


def test_nvcc_from_cuda_home_when_not_on_path(tmp_path):
    toolkit = fake_toolkit(tmp_path, '13.0')
    proc, p = plan(tmp_path, path=[fake_smi(tmp_path, 'NVIDIA H200, 9.0')],
                   CUDA_HOME=toolkit)
    assert proc.returncode == 0, proc.stderr
    assert p['variant'] == 'cuda13.0' and p['CUDA_HOME'] == str(toolkit)
    assert p['nvcc'].startswith(str(toolkit / 'bin' / 'nvcc'))


def test_cuda_home_wins_over_the_nvcc_on_path(tmp_path):
    # torch's build compiles with $CUDA_HOME/bin/nvcc: that one is checked
    old, new = fake_toolkit(tmp_path, '12.4'), fake_toolkit(tmp_path, '13.0')
    path = [old / 'bin', fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    proc, p = plan(tmp_path, path=path, CUDA_HOME=new)
    assert proc.returncode == 0, proc.stderr
    assert p['variant'] == 'cuda13.0' and p['CUDA_HOME'] == str(new)


def test_wrapper_nvcc_finds_its_toolkit(tmp_path):
    # e.g. /usr/local/bin/nvcc running /usr/local/cuda-13.0/bin/nvcc
    smi = fake_smi(tmp_path, 'NVIDIA H200, 9.0')
    for headers in (True, False):
        toolkit = fake_toolkit(tmp_path / str(headers), '13.0', headers)
        wrap = tmp_path / str(headers) / 'wrap'
        wrap.mkdir()
        _executable(wrap / 'nvcc', f'exec {toolkit}/bin/nvcc "$@"\n')
        proc, p = plan(tmp_path, path=[wrap, smi])
        if headers:
            assert proc.returncode == 0, proc.stderr
            assert p['CUDA_HOME'] == str(toolkit)
        else:
            assert_refused(proc, 'set CUDA_HOME')


def test_bad_arch_list(tmp_path):
    path = [fake_toolkit(tmp_path, '13.0') / 'bin']
    proc, _ = plan(tmp_path, path=path, TORCH_CUDA_ARCH_LIST='sm_90')
    assert_refused(proc, "TORCH_CUDA_ARCH_LIST='sm_90'")


def test_keeps_an_installed_cuda_build(tmp_path):
    (tmp_path / 'venv').mkdir()
    (tmp_path / 'venv' / '.mmcv_torch').write_text('2.12.1 cuda13.0-sm9.0\n')
    smi = fake_smi(tmp_path, 'NVIDIA H200, 9.0')
    for path in ([smi], []):  # a GPU node without nvcc, a bare login node
        proc, p = plan(tmp_path, path=path)
        assert proc.returncode == 0, proc.stderr
        assert p['build'] == 'cuda13.0-sm9.0' and p['FORCE_CUDA'] == '0'
        assert p['reason'].startswith('keeping the CUDA build')
    _, p = plan(tmp_path, MIM_MMCV_CPU_ONLY=1)
    assert p['build'] == 'cpu'
    _, p = plan(tmp_path, torch='2.12.2:13.0')  # for another torch: not kept
    assert p['build'] == 'cpu'
    # not kept for a GPU it has no code for
    other = tmp_path / 'other'
    other.mkdir()
    proc, _ = plan(tmp_path, path=[fake_smi(other, 'NVIDIA B200, 10.0')])
    assert_refused(proc, 'no nvcc')


def fake_venv(tmp_path):
    """A venv whose python runs `python -c` / `python -` (the script's quick
    checks) and fails anything else (pip) with exit 97: a run that gets past
    its checks stops at step 1, and nothing is ever installed."""
    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    _executable(venv_bin / 'python', f'''\
        case "$1" in -c|-) exec {sys.executable} "$@" ;; esac
        exit 97
        ''')


def test_stamp_holds_the_build_variant(tmp_path):
    """An up-to-date CPU .venv is rebuilt once the plan becomes CUDA."""
    fake_venv(tmp_path)
    files = [osp.join(REPO, 'requirements', 'lock.txt'),
             osp.join(REPO, 'setup.cfg'), SCRIPT]
    key = hashlib.sha256(b''.join(open(f, 'rb').read()
                                  for f in files)).hexdigest()[:16]
    (tmp_path / 'venv' / '.mim_env_stamp').write_text(f'{key} cpu\n')
    proc, _ = run_script(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'environment up to date' in proc.stdout
    assert 'mmcv cpu' in proc.stdout
    path = [fake_toolkit(tmp_path, '13.0') / 'bin',
            fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    proc, _ = run_script(tmp_path, path=path)
    assert 'environment up to date' not in proc.stdout
    assert proc.returncode == 97
    assert 'FAILED at step "1/6' in proc.stderr


def test_torch_override_is_for_plan_only(tmp_path):
    fake_venv(tmp_path)
    proc, _ = run_script(tmp_path, MIM_TORCH_CUDA=TORCH)
    assert proc.returncode == 1 and 'for tests of --plan only' in proc.stderr
    proc, _ = run_script(tmp_path, '--help')
    assert proc.returncode == 0
    assert 'MIM_TORCH_CUDA' in proc.stdout and 'tests' in proc.stdout
    assert 'MIM_MMCV_CPU_ONLY' in proc.stdout


BUILD_VARS = ('FORCE_CUDA|TORCH_CUDA_ARCH_LIST|CUDA_HOME|MAX_JOBS|'
              'CUDA_VISIBLE_DEVICES|MMCV_WITH_OPS')
WHEEL = f'mmcv-2.1.0-{PY_TAG}-{PY_TAG}-linux_x86_64.whl'


def recording_venv(tmp_path):
    """A venv whose python records what the script asks of it instead of
    installing: pip calls (with the build variables of ``pip wheel``, which
    leaves an empty mmcv wheel), torch 2.12.1 for CUDA 13.0, and the build the
    import check is told; other ``-c`` snippets run for real."""
    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    calls = tmp_path / 'calls'
    _executable(venv_bin / 'python', f'''\
        case "$1" in
        -m)
            shift 2
            echo "pip $*" >> {calls}
            [ "$2" = wheel ] || exit 0
            env | grep -E '^({BUILD_VARS})=' | sort >> {calls}
            while [ $# -gt 0 ]; do
                [ "$1" = -w ] && : > "$2/{WHEEL}"
                shift
            done
            exit 0 ;;
        -c)
            case "$2" in *importlib.metadata*) exit 1 ;; esac
            exec {sys.executable} "$@" ;;
        -)
            script=$(cat)
            case "$script" in
            *"find_spec('torch')"*) echo "2.12.1 13.0" ;;
            *MIM_PLAN_BUILD*)
                echo "check $MIM_PLAN_BUILD gpu=$MIM_GPU_VISIBLE" >> {calls} ;;
            esac
            exit 0 ;;
        esac
        exit 97
        ''')
    return calls


def wheel_calls(calls) -> list:
    """The ``pip wheel`` calls of the log, each with its build variables."""
    out, current = [], None
    for line in calls.read_text().splitlines():
        if line.startswith('pip '):  # pip --disable-pip-version-check CMD ...
            current = {} if line.split()[2] == 'wheel' else None
            if current is not None:
                out.append(current)
        elif current is not None and '=' in line:
            key, value = line.split('=', 1)
            current[key] = value
    return out


def test_build_gets_the_plan(tmp_path):
    """The whole script, nothing installed: the build variables, the wheel
    cache folder, the marker and the stamp follow the plan."""
    calls = recording_venv(tmp_path)
    toolkit = fake_toolkit(tmp_path, '13.0')
    path = [toolkit / 'bin', fake_smi(tmp_path, 'NVIDIA H200, 9.0')]
    proc, _ = run_script(tmp_path, path=path, MAX_JOBS=5)
    assert proc.returncode == 0, proc.stderr
    assert 'environment ready' in proc.stdout
    (build,) = wheel_calls(calls)
    assert build['FORCE_CUDA'] == '1' and build['MMCV_WITH_OPS'] == '1'
    assert build['TORCH_CUDA_ARCH_LIST'] == '9.0' and build['MAX_JOBS'] == '5'
    assert build['CUDA_HOME'] == str(toolkit)
    assert 'CUDA_VISIBLE_DEVICES' not in build
    wheels = cache(tmp_path, 'torch2.12.1-cuda13.0-sm9.0')
    assert os.listdir(wheels) == [WHEEL]
    venv = tmp_path / 'venv'
    assert (venv / '.mmcv_torch').read_text().split() == [
        '2.12.1', 'cuda13.0-sm9.0']
    assert (venv / '.mim_env_stamp').read_text().split()[1] == 'cuda13.0-sm9.0'
    assert 'check cuda13.0-sm9.0 gpu=1' in calls.read_text()
    proc, _ = run_script(tmp_path, path=path)
    assert proc.returncode == 0 and 'environment up to date' in proc.stdout

    # CPU ops on purpose: a second wheel, built with the GPU hidden
    calls.write_text('')
    proc, _ = run_script(tmp_path, path=path, MIM_MMCV_CPU_ONLY=1)
    assert proc.returncode == 0, proc.stderr
    (build,) = wheel_calls(calls)
    assert build['FORCE_CUDA'] == '0' and build['CUDA_VISIBLE_DEVICES'] == ''
    assert os.listdir(cache(tmp_path, 'torch2.12.1-cpu')) == [WHEEL]
    assert (venv / '.mmcv_torch').read_text().split()[1] == 'cpu'
    assert 'check cpu gpu=1' in calls.read_text()

    # back to CUDA: the cached wheel is reused, nothing compiled
    calls.write_text('')
    proc, _ = run_script(tmp_path, path=path)
    assert proc.returncode == 0, proc.stderr
    assert wheel_calls(calls) == [] and 'reusing' in proc.stdout
    assert (venv / '.mmcv_torch').read_text().split()[1] == 'cuda13.0-sm9.0'
