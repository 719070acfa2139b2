#!/usr/bin/env bash
# Runs N processes of research.main on this machine, joined by jax.distributed, each with
# D CPU devices: a multi-host run in miniature (same code path as a TPU pod or GPU cluster).
#   launch/local.sh N D --config experiments/quickstart.py:runlocal --workdir runs/mh
set -euo pipefail
n=${1:?usage: launch/local.sh NUM_PROCESSES DEVICES_PER_PROCESS ARGS…}
d=${2:?usage: launch/local.sh NUM_PROCESSES DEVICES_PER_PROCESS ARGS…}
shift 2
port=$(( 20000 + RANDOM % 20000 ))
py=${PYTHON:-python}
pids=()
for ((i = 0; i < n; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=$d" JAX_PLATFORMS=cpu \
    "$py" -m research.main --coordinator "127.0.0.1:$port" --num_processes "$n" --process_id "$i" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
