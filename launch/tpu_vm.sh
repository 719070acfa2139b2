#!/usr/bin/env bash
# One research.main run on a Cloud TPU VM or pod slice: create it, copy and install this
# checkout on every worker, run the same command on all workers, stream the logs, and
# optionally delete it. With --spot the TPU comes from a queued resource; when it is
# preempted it is recreated and the run goes on from its last checkpoint in the workdir.
# The workdir and config.data.data_dir must be one directory every worker sees at the same
# path and that outlives the VM: a Cloud Storage bucket mounted with Cloud Storage FUSE, or
# a Filestore share, mounted on each worker (gs:// paths are not read directly yet).
#
#   launch/tpu_vm.sh [--dry_run] --name NAME --zone ZONE --type v5litepod-16 \
#       [--project P] [--version tpu-ubuntu2204-base] [--spot] [--restarts 3] [--delete] \
#       -- --config experiments/lm1b.py:size=base --workdir /mnt/bucket/runs/lm1b
#   launch/tpu_vm.sh --reuse --name NAME --zone ZONE -- ARGS…  # one more run on that VM
#
# --dry_run prints every gcloud command instead of running it. Needs gcloud, logged in,
# with TPU quota in ZONE; the workers install the project with jax[tpu].
set -euo pipefail

usage() { sed -n '2,16p' "$0" >&2; exit 2; }
dry_run=0 reuse=0 name='' zone='' type='' project='' version='tpu-ubuntu2204-base' spot=0 restarts=3 delete=0
while (($#)); do
  case "$1" in
    --dry_run) dry_run=1 ;;
    --reuse) reuse=1 ;;
    --name) name=$2; shift ;;
    --zone) zone=$2; shift ;;
    --type) type=$2; shift ;;
    --project) project=$2; shift ;;
    --version) version=$2; shift ;;
    --spot) spot=1 ;;
    --restarts) restarts=$2; shift ;;
    --delete) delete=1 ;;
    --) shift; break ;;
    *) echo "tpu_vm.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
[[ -n $name && -n $zone && ( -n $type || $reuse -eq 1 ) && $# -gt 0 ]] || usage
[[ " $* " == *" --workdir "* ]] || { echo 'tpu_vm.sh: pass --workdir (shared by all workers) after --' >&2; exit 2; }

where=(--zone "$zone")
[[ -n $project ]] && where+=(--project "$project")
run() {  # prints the command (--dry_run) or runs it
  if ((dry_run)); then
    local line
    line=$(printf '%q ' "$@")
    echo "${line% }"
  else
    "$@"
  fi
}

create() {
  if ((spot)); then
    run gcloud compute tpus queued-resources create "$name" --node-id "$name" "${where[@]}" \
      --accelerator-type "$type" --runtime-version "$version" --spot
    # A queued resource becomes ACTIVE when capacity is found.
    until ((dry_run)) || [[ $(gcloud compute tpus queued-resources describe "$name" "${where[@]}" \
      --format='value(state.state)') == ACTIVE ]]; do sleep 30; done
  else
    run gcloud compute tpus tpu-vm create "$name" "${where[@]}" --accelerator-type "$type" --version "$version"
  fi
}

remove() {
  if ((spot)); then
    run gcloud compute tpus queued-resources delete "$name" "${where[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$name" "${where[@]}" --quiet
  fi
}

install() {  # this checkout's committed tree, on every worker
  local archive=/tmp/wordlab-$name.tar.gz
  run git -C "$(dirname "$0")/.." archive --format=tar.gz -o "$archive" HEAD
  run gcloud compute tpus tpu-vm scp "$archive" "$name:wordlab.tar.gz" "${where[@]}" --worker=all
  local setup='mkdir -p wordlab && tar -xzf wordlab.tar.gz -C wordlab && cd wordlab'
  setup+=' && python3 -m venv .venv && .venv/bin/pip install -q -e . "jax[tpu]"'
  run gcloud compute tpus tpu-vm ssh "$name" "${where[@]}" --worker=all --command "$setup"
}

train() {  # the same command on every worker; jax.distributed finds the pod's workers itself
  local args
  args=$(printf '%q ' "$@")
  run gcloud compute tpus tpu-vm ssh "$name" "${where[@]}" --worker=all --command \
    "cd wordlab && .venv/bin/python -m research.main --distributed ${args% }"
}

if ((!reuse)); then
  create
  install
fi
attempt=0
until train "$@"; do
  state=$( ((dry_run)) || gcloud compute tpus tpu-vm describe "$name" "${where[@]}" --format='value(state)')
  if ((spot)) && [[ $state == PREEMPTED ]] && ((attempt++ < restarts)); then
    echo "tpu_vm.sh: $name was preempted; recreating it and resuming (restart $attempt of $restarts)" >&2
    remove
    create
    install
  else
    echo "tpu_vm.sh: the run failed (TPU state ${state:-unknown}); $name is left for inspection" >&2
    exit 1
  fi
done
if ((delete)); then remove; fi
