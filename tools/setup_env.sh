#!/usr/bin/env bash
# Build the pinned OpenMMLab stack into a local virtual environment.
#
# Usage: bash tools/setup_env.sh          (what `make env` runs)
#
# Idempotent: when .venv already matches requirements/lock.txt (and setup.cfg)
# it returns in about a second. Otherwise it installs, in this order:
#   1. pip / setuptools<82 / wheel / ninja   (setuptools>=82 lacks pkg_resources)
#   2. torch + torchvision, standard PyPI build (a +cpu torch breaks torchvision)
#   3. mmcv 2.1.0 compiled from source with its ops against that torch; the
#      wheel is kept in $MIM_CACHE_DIR/wheels/<python>-torch<version>/ so a fresh
#      clone reuses it and a different torch never picks up an ABI-foreign build
#   4. the rest of the lock file (mmengine, mmdet, mmseg, mmpretrain, timm, ...)
#   5. this package, editable, without touching the pins
#   6. an import check of the whole stack, then the stamp
#
# Environment: PYTHON (interpreter for the venv, default python3),
# MIM_VENV (default <repo>/.venv), MIM_CACHE_DIR (default ~/.cache/mim_pretrain).
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MIM_VENV:-$ROOT/.venv}
LOCK=$ROOT/requirements/lock.txt
CACHE=${MIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mim_pretrain}
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.mim_env_stamp

log() { printf '[env] %s\n' "$*"; }
die() { printf '[env] FAILED at step "%s": %s\n' "$CURRENT_STEP" "$*" >&2; exit 1; }
CURRENT_STEP="checks"
trap 'rc=$?; [ $rc -ne 0 ] && printf "[env] FAILED at step \"%s\" (exit %s); see the output above\n" "$CURRENT_STEP" "$rc" >&2' EXIT

[ -f "$LOCK" ] || die "lock file $LOCK not found"
command -v "$PYTHON" >/dev/null || die "interpreter '$PYTHON' not found (set PYTHON=...)"

key=$(cat "$LOCK" "$ROOT/setup.cfg" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
# up to date: same stamp, and the package is still installed (found, not
# imported: importing the whole stack takes seconds)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] && "$VENV/bin/python" -c \
    'import importlib.util as u, sys; sys.exit(u.find_spec("mim_pretrain") is None)' 2>/dev/null; then
    log "environment up to date: $VENV (lock $key)"
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
TORCH_V=$("$PY" -c 'import torch; print(torch.__version__)')
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
WHEELS=$CACHE/wheels/$PY_TAG-torch$TORCH_V
mkdir -p "$WHEELS"
MMCV_V=$(pin mmcv)
wheel=$(ls "$WHEELS"/mmcv-"$MMCV_V"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    log "     compiling mmcv $MMCV_V against torch $TORCH_V (about 10 minutes on 2 cores)"
    tmp=$(mktemp -d)
    b0=$SECONDS
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist only and could
    # hand back a build made against another torch.
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} PATH="$VENV/bin:$PATH" \
        "${PIP[@]}" wheel --no-deps --no-build-isolation --no-cache-dir --no-binary mmcv \
        -w "$tmp" "mmcv==$MMCV_V" || die "mmcv build failed"
    built=$(ls "$tmp"/mmcv-*.whl) || die "mmcv build produced no wheel"
    mv "$built" "$WHEELS/" && rm -rf "$tmp"
    wheel=$WHEELS/$(basename "$built")
    log "     mmcv build took $((SECONDS - b0)) s; wheel kept in $WHEELS"
else
    log "     reusing $wheel"
fi
installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("mmcv"))' 2>/dev/null || true)
if [ "$installed" != "$MMCV_V" ] || [ "$(cat "$VENV/.mmcv_torch" 2>/dev/null)" != "$TORCH_V" ]; then
    "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
    echo "$TORCH_V" > "$VENV/.mmcv_torch"
fi
done_step

step "4/6 the rest of the lock file"
"${PIP[@]}" install -q -r "$LOCK"
done_step

step "5/6 mim_pretrain (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
done_step

step "6/6 import check"
"$PY" - <<'EOF' || die "the installed stack does not import"
import mmcv, mmengine, mmdet, mmseg, mmpretrain, timm, pycocotools, torch
from mmcv.ops import RoIAlign, nms  # compiled ops, needed by Mask R-CNN
import mmdet.models, mmseg.datasets, mmseg.models, mmpretrain.models  # full imports
import mim_pretrain
print('[env]      ' + ', '.join(f'{m.__name__} {m.__version__}' for m in
      (torch, mmcv, mmengine, mmdet, mmseg, mmpretrain, timm, mim_pretrain)))
EOF
done_step

echo "$key" > "$STAMP"
CURRENT_STEP="done"
log "environment ready in $((SECONDS - T0)) s: $VENV"
