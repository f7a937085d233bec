#!/usr/bin/env bash
# Build the pinned OpenMMLab stack into a local virtual environment.
#
# Usage: bash tools/setup_env.sh          (what `make env` runs)
#        bash tools/setup_env.sh --plan   print the mmcv build plan; build nothing
#
# Idempotent: when .venv already matches requirements/lock.txt (and setup.cfg)
# and the mmcv build plan below, it returns in about a second. Otherwise it
# installs, in this order:
#   1. pip / setuptools<82 / wheel / ninja   (setuptools>=82 lacks pkg_resources)
#   2. torch + torchvision, standard PyPI build (a +cpu torch breaks torchvision)
#   3. mmcv 2.1.0 compiled from source with its ops against that torch, CUDA
#      ops included or not as the plan says; the wheel is kept in
#      $MIM_CACHE_DIR/wheels/<python>-torch<version>-<variant>[-sm<arches>]/
#      (variant: cpu or cuda<nvcc version>) so a fresh clone reuses it, and
#      neither another torch nor another build variant picks it up
#   4. the rest of the lock file (mmengine, mmdet, mmseg, mmpretrain, timm, ...)
#   5. this package, editable, without touching the pins
#   6. an import check of the whole stack (with a CUDA build and a GPU visible,
#      mmcv's nms and RoIAlign run on the GPU), then the stamp
#
# The mmcv build plan ("a GPU is visible": nvidia-smi lists one; nvcc is
# $CUDA_HOME/bin/nvcc, else the nvcc on PATH):
#   * MIM_MMCV_CPU_ONLY=1: CPU ops only, even with a GPU visible.
#   * nvcc found, and a GPU visible or TORCH_CUDA_ARCH_LIST set: CUDA ops
#     (FORCE_CUDA=1) for TORCH_CUDA_ARCH_LIST, else for the visible GPUs'
#     compute capability. Stops before compiling when nvcc's CUDA major version
#     is not torch.version.cuda's.
#   * a GPU visible (or TORCH_CUDA_ARCH_LIST set) and no nvcc: stops, saying
#     what to do.
#   * otherwise (no GPU, no TORCH_CUDA_ARCH_LIST): CPU ops only.
#   A CUDA build already in the venv (same torch, code for the visible GPU)
#   is kept where the plan would otherwise build CPU ops or stop for want of
#   nvcc: it has the CPU ops too. MIM_MMCV_CPU_ONLY=1 replaces it.
#
# Environment: PYTHON (interpreter for the venv, default python3),
# MIM_VENV (default <repo>/.venv), MIM_CACHE_DIR (default ~/.cache/mim_pretrain),
# CUDA_HOME (the CUDA toolkit to compile with), TORCH_CUDA_ARCH_LIST (e.g.
# "8.0;9.0"; default: the visible GPUs'), MIM_MMCV_CPU_ONLY=1, MAX_JOBS
# (parallel compile jobs, default: all cores available). The script sets
# FORCE_CUDA itself. For tests of --plan only: MIM_TORCH_CUDA=VERSION:CUDA
# (e.g. 2.12.1:13.0, or 2.12.1:none for a CPU-only torch) stands in for the
# venv's torch.__version__ and torch.version.cuda.
set -euo pipefail
PLAN_ONLY=0
case "${1:-}" in
    --help|-h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --plan) PLAN_ONLY=1 ;;
    "") ;;
    *) printf '[env] unknown argument %s (try --help)\n' "$1" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MIM_VENV:-$ROOT/.venv}
LOCK=$ROOT/requirements/lock.txt
CACHE=${MIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mim_pretrain}
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.mim_env_stamp
MARKER=$VENV/.mmcv_torch  # "<torch version> <mmcv build>" of the installed mmcv

log() { printf '[env] %s\n' "$*"; }
die() { printf '[env] FAILED at step "%s": %s\n' "$CURRENT_STEP" "$*" >&2; exit 1; }
stop() {  # the plan refuses to build: exit 3, before anything is compiled
    printf '[env] FAILED at step "%s": %s\n' "$CURRENT_STEP" "$*" >&2; exit 3
}
CURRENT_STEP="checks"
[ $PLAN_ONLY = 1 ] && CURRENT_STEP="plan"
trap 'rc=$?; [ $rc -ne 0 ] && printf "[env] FAILED at step \"%s\" (exit %s); see the output above\n" "$CURRENT_STEP" "$rc" >&2' EXIT

[ -f "$LOCK" ] || die "lock file $LOCK not found"
command -v "$PYTHON" >/dev/null || die "interpreter '$PYTHON' not found (set PYTHON=...)"

# ---------------------------------------------------------------- the plan
# torch_info PY: sets TORCH_V and TORCH_CUDA (torch.version.cuda, "none" for a
# CPU-only torch, "" when torch is not installed) from torch/version.py,
# without importing torch (that takes seconds).
torch_info() {
    TORCH_V="" TORCH_CUDA=""
    if [ -n "${MIM_TORCH_CUDA:-}" ]; then
        [ $PLAN_ONLY = 1 ] || die "MIM_TORCH_CUDA is for tests of --plan only; unset it"
        [[ $MIM_TORCH_CUDA == ?*:?* ]] ||
            die "MIM_TORCH_CUDA='$MIM_TORCH_CUDA' must be VERSION:CUDA, e.g. 2.12.1:13.0 or 2.12.1:none"
        TORCH_V=${MIM_TORCH_CUDA%%:*} TORCH_CUDA=${MIM_TORCH_CUDA#*:}
        return 0
    fi
    [ -x "$1" ] || return 0
    local out
    out=$("$1" - 2>/dev/null <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec('torch')
if spec is not None:
    path = os.path.join(spec.submodule_search_locations[0], 'version.py')
    ns = {}
    with open(path) as f:
        exec(compile(f.read(), path, 'exec'), ns)
    print(ns['__version__'], ns.get('cuda') or 'none')
EOF
    ) || out=""
    if [ -n "$out" ]; then
        TORCH_V=${out%% *} TORCH_CUDA=${out#* }
    fi
}

detect_gpu() {  # sets GPU_VISIBLE (0/1), GPU_CAPS ("8.0;9.0"), GPU_DESC, GPU_NOTE
    GPU_VISIBLE=0 GPU_CAPS="" GPU_DESC="" GPU_NOTE="nvidia-smi not found"
    command -v nvidia-smi >/dev/null 2>&1 || return 0
    local out line name cap descs=() caps=()
    if ! out=$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>&1) ||
            [ -z "${out//[[:space:]]/}" ]; then
        # an older driver knows no compute_cap: ask for the names alone
        if ! out=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>&1) ||
                [ -z "${out//[[:space:]]/}" ]; then
            GPU_NOTE="nvidia-smi lists no GPU: $(printf '%s\n' "$out" | head -n1)"
            return 0
        fi
    fi
    while IFS= read -r line; do
        [ -n "${line//[[:space:]]/}" ] || continue
        if [[ $line == *,* ]]; then
            name=${line%,*} cap=${line##*,}
        else
            name=$line cap=""
        fi
        name=$(printf '%s' "$name" | sed 's/^ *//; s/ *$//')
        cap=$(printf '%s' "$cap" | tr -d ' ')
        [[ $cap =~ ^[0-9]+\.[0-9]+$ ]] || cap=""
        descs+=("$name (${cap:-compute capability unknown})")
        [ -z "$cap" ] || caps+=("$cap")
    done <<< "$out"
    [ ${#descs[@]} -gt 0 ] || return 0
    GPU_VISIBLE=1 GPU_NOTE=""
    GPU_DESC=$(printf '%s\n' "${descs[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')
    [ ${#caps[@]} -eq 0 ] || GPU_CAPS=$(printf '%s\n' "${caps[@]}" | sort -uV | paste -sd';' -)
}

has_cuda_headers() {
    [ -f "$1/include/cuda_runtime.h" ] || compgen -G "$1/targets/*/include/cuda_runtime.h" >/dev/null
}

cuda_root_of() {  # cuda_root_of NVCC: the toolkit folder torch's build needs as CUDA_HOME
    local root top
    root=$(cd "$(dirname "$(readlink -f "$1")")/.." && pwd -P)
    if has_cuda_headers "$root"; then printf '%s' "$root"; return 0; fi
    # a wrapper script (e.g. /usr/local/bin/nvcc running /usr/local/cuda-13.0/bin/nvcc)
    top=$("$1" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1) || true
    if [ -n "$top" ] && root=$(cd "$top" 2>/dev/null && pwd -P) && has_cuda_headers "$root"; then
        printf '%s' "$root"; return 0
    fi
    return 1
}

norm_arches() {  # "9.0 8.0;8.0" -> "8.0;9.0"; empty output for an invalid list
    local a out=()
    for a in $(printf '%s' "$1" | tr ';,' '  '); do
        [[ $a =~ ^[0-9]+\.[0-9]+[a-z]?(\+PTX)?$ ]] || return 1
        out+=("$a")
    done
    [ ${#out[@]} -gt 0 ] || return 1
    printf '%s\n' "${out[@]}" | sort -uV | paste -sd';' -
}

covers() {  # covers ARCHES CAPS: every GPU capability has code in the arch list
    local cap a base ok
    for cap in ${2//;/ }; do
        ok=0
        for a in ${1//;/ }; do
            base=${a%+PTX} base=${base%[a-z]}
            if [ "$base" = "$cap" ]; then ok=1
            elif [[ $a == *+PTX ]] &&
                [ "$(printf '%s\n%s\n' "$base" "$cap" | sort -V | head -n1)" = "$base" ]; then ok=1
            fi
        done
        [ $ok = 1 ] || return 1
    done
}

# plan_mmcv: decides how mmcv is built. Sets PLAN_BUILD ("cpu" or e.g.
# "cuda13.0-sm9.0"), PLAN_VARIANT, PLAN_ARCHES, PLAN_FORCE_CUDA, PLAN_CUDA_HOME,
# PLAN_REASON, PLAN_NOTE and PLAN_JOBS, or calls stop with what to do.
# Needs TORCH_V / TORCH_CUDA (torch_info); with torch unknown it skips the
# version check (step 3 plans again once torch is installed).
plan_mmcv() {
    PLAN_BUILD=cpu PLAN_VARIANT=cpu PLAN_ARCHES="" PLAN_FORCE_CUDA=0
    PLAN_CUDA_HOME="" PLAN_REASON="" PLAN_NOTE="" NVCC="" NVCC_V="" NVCC_FROM=""
    local cpu_only=${MIM_MMCV_CPU_ONLY:-0} user_arches="" where="" tmaj installed=""
    PLAN_JOBS=${MAX_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
    [[ $PLAN_JOBS =~ ^[1-9][0-9]*$ ]] || stop "MAX_JOBS='$PLAN_JOBS' must be a positive integer"
    [[ $cpu_only =~ ^[01]?$ ]] || stop "MIM_MMCV_CPU_ONLY='$cpu_only' must be 0 or 1"

    detect_gpu
    if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
        NVCC=$CUDA_HOME/bin/nvcc NVCC_FROM="CUDA_HOME"
    elif NVCC=$(command -v nvcc 2>/dev/null); then
        NVCC_FROM="PATH"
    else
        NVCC=""
        where="not on PATH, and ${CUDA_HOME:+CUDA_HOME=$CUDA_HOME has no bin/nvcc}"
        [ -n "${CUDA_HOME:-}" ] || where="${where}CUDA_HOME is unset"
    fi
    if [ -n "$NVCC" ]; then
        NVCC_V=$("$NVCC" --version 2>/dev/null |
            sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1) || NVCC_V=""
    fi
    if [ -n "${TORCH_CUDA_ARCH_LIST:-}" ]; then
        user_arches=$(norm_arches "$TORCH_CUDA_ARCH_LIST") || stop \
            "TORCH_CUDA_ARCH_LIST='$TORCH_CUDA_ARCH_LIST' is not a list of compute capabilities such as '9.0' or '8.0;9.0' (entries X.Y, X.Ya or X.Y+PTX)"
    fi
    if [ "$TORCH_CUDA" = none ]; then tmaj=""; else tmaj=${TORCH_CUDA%%.*}; fi
    local toolkit="the CUDA ${tmaj:-} toolkit${TORCH_CUDA:+ (torch $TORCH_V is built for CUDA $TORCH_CUDA)}"
    [ -n "$tmaj" ] || toolkit="the CUDA toolkit of torch.version.cuda"
    # a CUDA build of mmcv already in the venv, for this torch, that covers the visible GPU
    if [ -f "$MARKER" ] && [ -n "$TORCH_V" ]; then
        read -r m_torch m_build _ < "$MARKER" || true
        if [ "${m_torch:-}" = "$TORCH_V" ] && [[ ${m_build:-} == cuda*-sm* ]] &&
                covers "$(printf '%s' "${m_build#*-sm}" | tr _ ';')" "$GPU_CAPS"; then
            installed=$m_build
        fi
    fi

    if [ "$cpu_only" = 1 ]; then
        PLAN_REASON="MIM_MMCV_CPU_ONLY=1"
        [ $GPU_VISIBLE = 0 ] || PLAN_NOTE="the GPU is hidden from the build (CUDA_VISIBLE_DEVICES=''), so mmcv gets no CUDA ops"
    elif [ -n "$NVCC" ] && { [ $GPU_VISIBLE = 1 ] || [ -n "$user_arches" ]; }; then
        [ -n "$NVCC_V" ] || stop "cannot read the CUDA version of $NVCC ('nvcc --version' prints no 'release X.Y'): set CUDA_HOME to a working CUDA toolkit, or set MIM_MMCV_CPU_ONLY=1 to build the CPU ops only"
        [ "$TORCH_CUDA" != none ] || stop "torch $TORCH_V has no CUDA (torch.version.cuda is None), so mmcv's CUDA ops cannot be built against it: install the standard torch wheel pinned in requirements/lock.txt, or set MIM_MMCV_CPU_ONLY=1 to build the CPU ops only"
        if [ -n "$tmaj" ] && [ "${NVCC_V%%.*}" != "$tmaj" ]; then
            stop "nvcc $NVCC is CUDA $NVCC_V but torch $TORCH_V is built for CUDA $TORCH_CUDA: mmcv's CUDA ops need a CUDA $tmaj nvcc. Install the CUDA $tmaj toolkit and set CUDA_HOME to it (or put its bin/ first on PATH), or set MIM_MMCV_CPU_ONLY=1 to build the CPU ops only"
        fi
        if [ -n "$user_arches" ]; then
            PLAN_ARCHES=$user_arches
            PLAN_REASON="TORCH_CUDA_ARCH_LIST is set"
            if [ -n "$GPU_CAPS" ] && ! covers "$PLAN_ARCHES" "$GPU_CAPS"; then
                PLAN_NOTE="TORCH_CUDA_ARCH_LIST=$PLAN_ARCHES has no code for the visible GPU ($GPU_DESC): the CUDA ops will not run on it"
            fi
        else
            [ -n "$GPU_CAPS" ] || stop "nvidia-smi lists a GPU ($GPU_DESC) but not its compute capability: set TORCH_CUDA_ARCH_LIST (e.g. 9.0 for an H100/H200, 8.0 for an A100)"
            PLAN_ARCHES=$GPU_CAPS
            PLAN_REASON="a GPU is visible: $GPU_DESC"
        fi
        if [ -n "${CUDA_HOME:-}" ] && [ "$NVCC" = "$CUDA_HOME/bin/nvcc" ]; then
            has_cuda_headers "$CUDA_HOME" || stop "CUDA_HOME=$CUDA_HOME has bin/nvcc but no include/cuda_runtime.h: set CUDA_HOME to a complete CUDA toolkit (the folder holding bin/nvcc and include/)"
            PLAN_CUDA_HOME=$CUDA_HOME
        else
            PLAN_CUDA_HOME=$(cuda_root_of "$NVCC") || stop "cannot find the CUDA toolkit of $NVCC (no include/cuda_runtime.h next to it, and 'nvcc --dryrun' names none): set CUDA_HOME to the toolkit's root (the folder holding bin/nvcc and include/)"
        fi
        PLAN_VARIANT=cuda$NVCC_V PLAN_FORCE_CUDA=1
        PLAN_BUILD=$PLAN_VARIANT-sm${PLAN_ARCHES//;/_}
    elif [ -n "$installed" ]; then
        PLAN_BUILD=$installed PLAN_VARIANT=${installed%%-sm*}
        PLAN_ARCHES=${installed#*-sm} PLAN_ARCHES=${PLAN_ARCHES//_/;}
        PLAN_REASON="keeping the CUDA build installed in $VENV (it has the CPU ops too; MIM_MMCV_CPU_ONLY=1 replaces it)"
    elif [ $GPU_VISIBLE = 1 ]; then
        stop "a GPU is visible ($GPU_DESC) but no nvcc was found ($where): mmcv would be built without its CUDA ops. Install $toolkit and set CUDA_HOME to it (or put its bin/ on PATH), or set MIM_MMCV_CPU_ONLY=1 to build the CPU ops only"
    elif [ -n "$user_arches" ]; then
        stop "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST asks for CUDA ops but no nvcc was found ($where): install $toolkit and set CUDA_HOME to it, or unset TORCH_CUDA_ARCH_LIST (or set MIM_MMCV_CPU_ONLY=1) to build the CPU ops only"
    elif [ -n "$NVCC" ]; then
        PLAN_REASON="no GPU visible ($GPU_NOTE) and TORCH_CUDA_ARCH_LIST unset"
        PLAN_NOTE="nvcc ${NVCC_V:+$NVCC_V }is at $NVCC, but with no GPU visible the CUDA ops are built only for a TORCH_CUDA_ARCH_LIST: set it (e.g. '8.0;9.0') to build them here"
    else
        PLAN_REASON="no GPU visible ($GPU_NOTE) and no nvcc"
    fi
}

py_tag() { "$1" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")'; }
wheel_dir() { printf '%s' "$CACHE/wheels/$1-torch$TORCH_V-$PLAN_BUILD"; }

if [ $PLAN_ONLY = 1 ]; then
    PLAN_PY=$PYTHON
    [ ! -x "$VENV/bin/python" ] || PLAN_PY=$VENV/bin/python
    torch_info "$VENV/bin/python"
    [ -n "$TORCH_V" ] || die "torch is not installed in $VENV yet, so its CUDA version is unknown: run bash tools/setup_env.sh (it stops before compiling mmcv when the plan fails)"
    plan_mmcv
    cat <<EOF
variant=$PLAN_VARIANT
build=$PLAN_BUILD
cache=$(wheel_dir "$(py_tag "$PLAN_PY")")
FORCE_CUDA=$PLAN_FORCE_CUDA
TORCH_CUDA_ARCH_LIST=$PLAN_ARCHES
MAX_JOBS=$PLAN_JOBS
CUDA_HOME=$PLAN_CUDA_HOME
nvcc=${NVCC:+$NVCC (CUDA ${NVCC_V:-version unknown}, from $NVCC_FROM)}
gpu=${GPU_DESC:-none ($GPU_NOTE)}
torch=$TORCH_V (CUDA $TORCH_CUDA)
reason=$PLAN_REASON
note=$PLAN_NOTE
EOF
    exit 0
fi

# ------------------------------------------------------------- up to date?
key=$(cat "$LOCK" "$ROOT/setup.cfg" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
torch_info "$VENV/bin/python"   # the torch already in the venv, if any
plan_mmcv                       # stops here (before installing anything) if it must
# up to date: same stamp (lock, set-up and mmcv build), and the package is still
# installed (found, not imported: importing the whole stack takes seconds)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key $PLAN_BUILD" ] && "$VENV/bin/python" -c \
    'import importlib.util as u, sys; sys.exit(u.find_spec("mim_pretrain") is None)' 2>/dev/null; then
    log "environment up to date: $VENV (lock $key, mmcv $PLAN_BUILD)"
    exit 0
fi

pin() {  # pin NAME -> the exact version in the lock file
    local v
    v=$(grep -iE "^$1==" "$LOCK" | head -n1 | cut -d= -f3 | tr -d ' ')
    [ -n "$v" ] || die "no '$1==...' pin in $LOCK"
    printf '%s' "$v"
}

# pip warns once per package about unused local index folders some machines
# configure; drop those lines, keep everything else (and pip's exit code).
pip_quiet() {
    "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

T0=$SECONDS
step() {  # step "title": announce, and remember it for the failure message
    CURRENT_STEP=$1
    STEP_T0=$SECONDS
    log "---- $1"
}
done_step() { log "     done in $((SECONDS - STEP_T0)) s"; }

step "1/6 virtual environment and build tools"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
fi
PY=$VENV/bin/python
PIP=(pip_quiet "$PY" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q -c "$LOCK" pip setuptools wheel ninja
done_step

step "2/6 torch $(pin torch) + torchvision $(pin torchvision)"
"${PIP[@]}" install -q -c "$LOCK" "torch==$(pin torch)" "torchvision==$(pin torchvision)"
"$PY" - <<'EOF' || die "torch/torchvision do not load together (a +cpu torch?)"
import torch, torchvision
from torchvision.ops import nms
assert '+cpu' not in torch.__version__, f'torch {torch.__version__} is a +cpu build'
nms(torch.rand(4, 4) + torch.tensor([0, 0, 1, 1]), torch.rand(4), 0.5)
print(f'[env]      torch {torch.__version__}, torchvision {torchvision.__version__}')
EOF
done_step

step "3/6 mmcv $(pin mmcv) with ops, built from source"
torch_info "$PY"
[ -n "$TORCH_V" ] || die "cannot read torch's version from $PY"
plan_mmcv   # again, now with the installed torch: stops before compiling if it must
log "     plan: $PLAN_BUILD ($PLAN_REASON)"
[ -z "$PLAN_NOTE" ] || log "     note: $PLAN_NOTE"
WHEELS=$(wheel_dir "$(py_tag "$PY")")
MMCV_V=$(pin mmcv)
want="$TORCH_V $PLAN_BUILD"
installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("mmcv"))' 2>/dev/null || true)
if [ "$installed" = "$MMCV_V" ] && [ "$(cat "$MARKER" 2>/dev/null)" = "$want" ]; then
    log "     mmcv $MMCV_V ($PLAN_BUILD) already installed"
else
    mkdir -p "$WHEELS"
    wheel=$(ls "$WHEELS"/mmcv-"$MMCV_V"-*.whl 2>/dev/null | head -n1 || true)
    if [ -n "$wheel" ]; then
        log "     reusing $wheel"
    elif [ "$PLAN_BUILD" != cpu ] && [ "$PLAN_FORCE_CUDA" != 1 ]; then
        die "mmcv is not installed and no $PLAN_BUILD wheel is in $WHEELS to reinstall it from: run the set-up where it can compile it (CUDA_HOME set to the CUDA toolkit, on a GPU node or with TORCH_CUDA_ARCH_LIST), or with MIM_MMCV_CPU_ONLY=1"
    else
        build_env=(MMCV_WITH_OPS=1 MAX_JOBS="$PLAN_JOBS" PATH="$VENV/bin:$PATH")
        if [ "$PLAN_FORCE_CUDA" = 1 ]; then
            build_env+=(FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$PLAN_ARCHES" CUDA_HOME="$PLAN_CUDA_HOME")
            log "     compiling mmcv $MMCV_V with CUDA ops (nvcc $NVCC_V, sm $PLAN_ARCHES, CUDA_HOME=$PLAN_CUDA_HOME) against torch $TORCH_V, $PLAN_JOBS jobs"
        else
            # CPU ops only: mmcv's setup.py builds CUDA ops whenever torch sees a GPU
            build_env+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
            log "     compiling mmcv $MMCV_V with CPU ops against torch $TORCH_V, $PLAN_JOBS jobs (about 10 minutes on 2 cores)"
        fi
        hint=""
        [ "$PLAN_FORCE_CUDA" = 0 ] ||
            hint=" (plan $PLAN_BUILD, nvcc $NVCC_V; MIM_MMCV_CPU_ONLY=1 builds the CPU ops only)"
        tmp=$(mktemp -d)
        b0=$SECONDS
        # --no-cache-dir: pip's own wheel cache is keyed by the sdist only and could
        # hand back a build made against another torch.
        (export "${build_env[@]}"
         "${PIP[@]}" wheel --no-deps --no-build-isolation --no-cache-dir --no-binary mmcv \
            -w "$tmp" "mmcv==$MMCV_V") || die "mmcv build failed$hint"
        built=$(ls "$tmp"/mmcv-*.whl) || die "mmcv build produced no wheel"
        mv "$built" "$WHEELS/" && rm -rf "$tmp"
        wheel=$WHEELS/$(basename "$built")
        log "     mmcv build took $((SECONDS - b0)) s; wheel kept in $WHEELS"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
    echo "$want" > "$MARKER"
fi
done_step

step "4/6 the rest of the lock file"
"${PIP[@]}" install -q -r "$LOCK"
done_step

step "5/6 mim_pretrain (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
done_step

step "6/6 import check"
MIM_PLAN_BUILD=$PLAN_BUILD MIM_GPU_VISIBLE=$GPU_VISIBLE MIM_GPU_DESC=$GPU_DESC \
"$PY" - <<'EOF' || die "the installed stack does not import, or mmcv's ops do not run (see above)"
import os
import sys

import mmcv, mmengine, mmdet, mmseg, mmpretrain, timm, pycocotools, torch
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms  # compiled ops, needed by Mask R-CNN
import mmdet.models, mmseg.datasets, mmseg.models, mmpretrain.models  # full imports
import mim_pretrain
print('[env]      ' + ', '.join(f'{m.__name__} {m.__version__}' for m in
      (torch, mmcv, mmengine, mmdet, mmseg, mmpretrain, timm, mim_pretrain)))

build = os.environ['MIM_PLAN_BUILD']
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
scores = torch.tensor([0.9, 0.8, 0.7])
feats = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
rois = torch.tensor([[0., 1., 1., 6., 6.], [1., 0., 0., 4., 4.]])
roi_align = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)
keep = nms(boxes, scores, 0.5)[1]
assert keep.tolist() == [0, 2], f'mmcv nms on the CPU kept {keep.tolist()}'
pooled = roi_align(feats, rois)
compiled = get_compiling_cuda_version()
if build == 'cpu':
    print('[env]      mmcv ops: CPU only')
    print('[env]      (for CUDA ops, run `make env` on a GPU node with the CUDA '
          f'{torch.version.cuda} toolkit, or set TORCH_CUDA_ARCH_LIST and '
          'CUDA_HOME: README.md, "On a GPU cluster")')
    sys.exit(0)
if compiled == 'not available':
    sys.exit(f'[env] mmcv was built without CUDA ops although the plan is {build}: '
             'remove its wheel from the cache and run the set-up again')
arches = build.split('-sm', 1)[1].replace('_', ';')
if os.environ['MIM_GPU_VISIBLE'] != '1':
    print(f'[env]      mmcv ops: CUDA {compiled} (TORCH_CUDA_ARCH_LIST={arches}); '
          'not run: no GPU visible here')
    sys.exit(0)
if not torch.cuda.is_available():
    sys.exit(f'[env] nvidia-smi lists a GPU ({os.environ["MIM_GPU_DESC"]}) but '
             'torch.cuda.is_available() is False: is the NVIDIA driver new enough '
             f'for CUDA {torch.version.cuda}, and CUDA_VISIBLE_DEVICES unset?')
dev, name = torch.device('cuda'), torch.cuda.get_device_name()
try:
    keep_gpu = nms(boxes.to(dev), scores.to(dev), 0.5)[1].cpu()
    pooled_gpu = roi_align(feats.to(dev), rois.to(dev)).cpu()
    torch.cuda.synchronize()
except Exception as e:  # no kernel image for this GPU, a driver mismatch, ...
    sys.exit(f'[env] mmcv CUDA ops fail on {name}: {e}')
assert keep_gpu.tolist() == keep.tolist(), f'nms on the GPU kept {keep_gpu.tolist()}'
assert torch.allclose(pooled_gpu, pooled, atol=1e-4), 'RoIAlign differs on the GPU'
print(f'[env]      mmcv ops: CUDA {compiled} (TORCH_CUDA_ARCH_LIST={arches}); nms and '
      f'RoIAlign ran on {name}')
EOF
done_step

echo "$key $PLAN_BUILD" > "$STAMP"
CURRENT_STEP="done"
log "environment ready in $((SECONDS - T0)) s: $VENV"
