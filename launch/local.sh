#!/usr/bin/env bash
# Runs `python -m mirjax.main` as N processes of one job on this machine.
#
#   launch/local.sh N --config=configs/sincmodnet.py --workdir=W [--config.FIELD=VALUE ...]
#
# Process 0 coordinates on 127.0.0.1:$MIRJAX_PORT (default: a free port). With at least N
# GPUs each process sees one (CUDA_VISIBLE_DEVICES=i); otherwise the processes share the
# CPU (set XLA_FLAGS=--xla_force_host_platform_device_count=K for K devices each). If any
# process fails, the others are stopped and its exit status is returned.
set -euo pipefail
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ || $1 -lt 1 ]]; then
  echo "usage: launch/local.sh NUM_PROCESSES --config=configs/X.py --workdir=DIR [flags]" >&2
  exit 2
fi
n=$1; shift
py=${PYTHON:-python}
port=${MIRJAX_PORT:-$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop; exit 130' INT TERM
for ((i = 0; i < n; i++)); do
  if ((gpus >= n)); then export CUDA_VISIBLE_DEVICES=$i; fi
  "$py" -m mirjax.main --coordinator_address="127.0.0.1:$port" --num_processes="$n" \
      --process_id="$i" "$@" &
  pids+=($!)
done
status=0
for ((left = n; left > 0; left--)); do
  code=0
  wait -n || code=$?
  if ((code != 0 && status == 0)); then status=$code; stop; fi  # the first failure counts
done
exit "$status"
