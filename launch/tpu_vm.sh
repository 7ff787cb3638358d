#!/usr/bin/env bash
# Runs the same `python -m mirjax.main` on every worker of a Cloud TPU VM (a pod slice).
#
#   launch/tpu_vm.sh TPU_NAME ZONE --config=configs/sincmodnet.py:mtat --workdir=/mnt/shared/w \
#       --config.data.manual_dir=/mnt/shared/magnatagatune
#
# Needs gcloud, and on every worker mirjax installed with jax[tpu] in a checkout at
# $MIRJAX_DIR (default ~/mirjax). The workdir and data folders must be the same shared
# filesystem on every worker (NFS, a gcsfuse mount). JAX finds the pod's topology itself
# (--distributed calls jax.distributed.initialize()).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: launch/tpu_vm.sh TPU_NAME ZONE --config=configs/X.py --workdir=DIR [flags]" >&2
  exit 2
fi
tpu=$1 zone=$2; shift 2
args=$(printf ' %q' "$@")
exec gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all \
    --command "cd ${MIRJAX_DIR:-~/mirjax} && ${PYTHON:-python3} -m mirjax.main --distributed$args"
