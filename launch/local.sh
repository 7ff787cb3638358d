#!/usr/bin/env bash
# Runs `python -m mirjax.main` as N processes of one job on this machine.
#
#   launch/local.sh N --config=configs/sincmodnet.py --workdir=W [--config.FIELD=VALUE ...]
#
# Process 0 coordinates on 127.0.0.1:$MIRJAX_PORT (default: a free port). With G >= N GPUs
# each process gets its own floor(G / N) of them (CUDA_VISIBLE_DEVICES, in order); with
# 0 < G < N the launcher refuses (a GPU cannot be split between processes), unless
# JAX_PLATFORMS=cpu asks for a CPU job. Without GPUs the processes share the CPU (set
# XLA_FLAGS=--xla_force_host_platform_device_count=K for K devices each). If any process
# fails, the others are stopped and its exit status is returned.
set -euo pipefail
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ || $1 -lt 1 ]]; then
  echo "usage: launch/local.sh NUM_PROCESSES --config=configs/X.py --workdir=DIR [flags]" >&2
  exit 2
fi
n=$1; shift
py=${PYTHON:-python}
port=${MIRJAX_PORT:-$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
gpus=0
if [[ ${JAX_PLATFORMS:-} != cpu ]] && command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if ((gpus > 0 && gpus < n)); then
  echo "launch/local.sh: $n processes but $gpus GPU(s) on this machine: each process needs its own" \
       "GPU; ask for at most $gpus processes, or set JAX_PLATFORMS=cpu for a CPU job" >&2
  exit 2
fi
per=$((gpus > 0 ? gpus / n : 0))

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop; exit 130' INT TERM
for ((i = 0; i < n; i++)); do
  if ((per > 0)); then
    export CUDA_VISIBLE_DEVICES=$(seq -s, $((i * per)) $((i * per + per - 1)))
  fi
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
