"""Two jax.distributed processes x 4 CPU devices train exactly like one process x 8."""

import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from research import checkpoint
from research.config import load_config
from research.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def overrides_for(bbc) -> list:
    return [
        f'data.data_dir={bbc["data_dir"]}',
        f'data.vocab_path={bbc["vocab_path"]}',
        'data.seq_len=32',
        'data.max_eval_sequences=16',
        'data.unigram_baseline=False',
        'model.num_layers=1',
        'model.d_model=32',
        'model.num_heads=2',
        'model.mlp_dim=64',
        'batch_size=16',
        'eval_batch_size=16',
        'total_steps=4',
        'log_every=2',
        'eval_every=0',
        'checkpoint_every=2',
        'progress_bar=False',
        'peak_flops=1e9',
        'sample.prompts=()',
        # SGD: Adam's g/sqrt(v) would blow float reduction-order noise in near-zero
        # gradients up to lr-sized updates, hiding real differences in noise.
        'optim.name=sgd',
        'optim.lr=0.5',
    ]


SPEC = 'experiments/quickstart.py'


def launch(processes: int, devices: int, workdir, overrides) -> str:
    """Runs research.main as `processes` jax.distributed processes x `devices` CPU devices
    (launch/local.sh); returns process 0's output."""
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('XLA_FLAGS', None)
    proc = subprocess.run(
        ['bash', 'launch/local.sh', str(processes), str(devices), '--config', SPEC, '--workdir', str(workdir)]
        + [f'--config.{o}' for o in overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def max_difference(a_dir, b_dir, step: int) -> float:
    a = checkpoint.load_params(str(a_dir / 'checkpoints'), step)[1]
    b = checkpoint.load_params(str(b_dir / 'checkpoints'), step)[1]
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))


@pytest.fixture(scope='module')
def one(bbc, tmp_path_factory):
    """The reference: 1 process x 8 devices, 4 steps, checkpoints at 2 and 4."""
    workdir = tmp_path_factory.mktemp('one')
    return workdir, train_and_evaluate(load_config(SPEC, overrides_for(bbc)), str(workdir))


def test_two_processes_match_one(bbc, tmp_path, one):
    out = launch(2, 4, tmp_path / 'two', overrides_for(bbc))
    assert f'val/loss {one[1]["val/loss"]:.4g}' in out, out[-2000:]
    assert max_difference(one[0], tmp_path / 'two', 4) < 1e-5


@pytest.mark.parametrize('processes,devices', [(1, 4), (2, 4)])
def test_a_checkpoint_from_8_devices_resumes_on_another_topology(bbc, tmp_path, one, processes, devices):
    """Step 2 of the 1 x 8 run, resumed on 1 process x 4 devices or 2 x 4, ends where the
    uninterrupted run did: the parameters reshard and the data position is global."""
    workdir = tmp_path / 'moved'
    shutil.copytree(one[0], workdir)
    shutil.rmtree(workdir / 'checkpoints' / '4')
    out = launch(processes, devices, workdir, overrides_for(bbc))
    assert 'resumed from step 2' in out
    assert max_difference(one[0], workdir, 4) < 1e-5
