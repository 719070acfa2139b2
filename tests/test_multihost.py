"""Two jax.distributed processes x 4 CPU devices train exactly like one process x 8."""

import os
import subprocess
import sys

import jax
import numpy as np

from research import checkpoint
from research.config import load_config
from research.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_processes_match_one(bbc, tmp_path):
    overrides = [
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
    spec = 'experiments/quickstart.py'
    one = train_and_evaluate(load_config(spec, overrides), str(tmp_path / 'one'))
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('XLA_FLAGS', None)
    proc = subprocess.run(
        ['bash', 'launch/local.sh', '2', '4', '--config', spec, '--workdir', str(tmp_path / 'two')]
        + [f'--config.{o}' for o in overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'val/loss {one["val/loss"]:.4g}' in proc.stdout, proc.stdout[-2000:]
    a = checkpoint.load_params(str(tmp_path / 'one' / 'checkpoints'), 4)[1]
    b = checkpoint.load_params(str(tmp_path / 'two' / 'checkpoints'), 4)[1]
    diff = jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b))
    assert max(diff) < 1e-5, max(diff)
