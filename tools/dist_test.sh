#!/usr/bin/env bash
# Distributed testing with torchrun.
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
set -eu
if [ $# -lt 3 ]; then echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py options]" >&2; exit 2; fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
source "$(dirname "$0")/_python.sh"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
