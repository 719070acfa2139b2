"""Cluster launchers: their --dry_run prints exactly the commands they would run."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ['--config', 'experiments/lm1b.py:size=base', '--workdir', '/mnt/bucket/runs/lm1b']


def dry_run(*args) -> list[str]:
    proc = subprocess.run(['bash', *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_tpu_vm_spot_creates_installs_runs_on_all_workers_and_deletes():
    where = '--zone us-central2-b'
    lines = dry_run('launch/tpu_vm.sh', '--dry_run', '--name', 'wl', '--zone', 'us-central2-b', '--type', 'v4-16',
                    '--spot', '--delete', '--', *RUN)  # fmt: skip
    assert lines[0] == (
        f'gcloud compute tpus queued-resources create wl --node-id wl {where} --accelerator-type v4-16 '
        '--runtime-version tpu-ubuntu2204-base --spot'
    )
    assert lines[2].startswith(f'gcloud compute tpus tpu-vm scp /tmp/wordlab-wl.tar.gz wl:wordlab.tar.gz {where}')
    assert 'jax\\[tpu\\]' in lines[3] and '--worker=all' in lines[3]
    run = lines[4].replace('\\ ', ' ')
    assert run.startswith(f'gcloud compute tpus tpu-vm ssh wl {where} --worker=all --command cd wordlab')
    assert 'research.main --distributed --config experiments/lm1b.py:size=base --workdir /mnt/bucket/runs/lm1b' in run
    assert lines[5] == f'gcloud compute tpus queued-resources delete wl {where} --force --quiet'
    assert len(lines) == 6


def test_tpu_vm_on_demand_keeps_the_vm():
    lines = dry_run('launch/tpu_vm.sh', '--dry_run', '--name', 'wl', '--zone', 'z', '--type', 'v5litepod-8', '--', *RUN)
    assert lines[0] == 'gcloud compute tpus tpu-vm create wl --zone z --accelerator-type v5litepod-8 --version ' + (
        'tpu-ubuntu2204-base'
    )
    assert not any('delete' in line for line in lines)


def test_tpu_vm_reuse_only_runs():
    lines = dry_run('launch/tpu_vm.sh', '--dry_run', '--reuse', '--name', 'wl', '--zone', 'z', '--', *RUN)
    assert len(lines) == 1 and lines[0].endswith('--workdir\\ /mnt/bucket/runs/lm1b'), lines


def test_slurm_runs_one_process_per_gpu():
    assert dry_run('launch/slurm.sbatch', '--dry_run', *RUN) == [
        'srun --kill-on-bad-exit=1 --gpus-per-task=1 .venv/bin/python -m research.main --distributed ' + ' '.join(RUN)
    ]


@pytest.mark.parametrize('script', ['launch/tpu_vm.sh', 'launch/slurm.sbatch'])
def test_missing_workdir_is_an_error(script):
    args = ['--name', 'a', '--zone', 'b', '--type', 'c', '--'] if script.endswith('.sh') else []
    proc = subprocess.run(['bash', script, '--dry_run', *args, '--config', 'x.py'], cwd=ROOT, capture_output=True)
    assert proc.returncode == 2 and b'--workdir' in proc.stderr
