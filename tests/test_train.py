"""End-to-end trainer runs on real BBC News text with tiny models."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import tiny_lm_config
from research import checkpoint
from research.train import train_and_evaluate


def params_at(workdir, step):
    return checkpoint.load_params(os.path.join(workdir, 'checkpoints'), step)[1]


def test_resume_is_bitwise_exact(bbc, tmp_path):
    """Train 6 steps; separately, train, drop the step-6 checkpoint and resume from step 3."""
    straight, resumed = str(tmp_path / 'a'), str(tmp_path / 'b')
    config = tiny_lm_config(bbc)
    train_and_evaluate(config, straight)
    train_and_evaluate(config, resumed)
    shutil.rmtree(os.path.join(resumed, 'checkpoints', '6'))
    train_and_evaluate(config, resumed)  # restores step 3: params, opt state, data position
    a, b = params_at(straight, 6), params_at(resumed, 6)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    first = params_at(straight, 3)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, a, first))), 'training moved params'


def test_metrics_and_outputs(bbc, tmp_path):
    workdir = str(tmp_path / 'run')
    config = tiny_lm_config(bbc, total_steps=4, data__unigram_baseline=True,
                            sample__prompts=('the government',), sample__max_new_tokens=5)
    result = train_and_evaluate(config, workdir)
    events = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
    names = set().union(*events)
    for name in ('step', 'train/loss', 'val/loss', 'val/perplexity', 'train/tokens_per_sec',
                 'train/mfu', 'val/unigram_perplexity', 'data/train_docs'):
        assert name in names, name
    assert result['val/perplexity'] == pytest.approx(np.exp(result['val/loss']))
    assert os.path.getsize(os.path.join(workdir, 'loss_curve.png')) > 1000
    samples = open(os.path.join(workdir, 'samples.txt')).read()
    assert samples.startswith('the government')
    assert json.load(open(os.path.join(workdir, 'config.json')))['total_steps'] == 4
    assert os.listdir(os.path.join(workdir, 'tensorboard'))


def test_eval_is_batch_size_invariant(bbc, tmp_path):
    r1 = train_and_evaluate(tiny_lm_config(bbc, total_steps=1, eval_batch_size=8), str(tmp_path / 'a'))
    r2 = train_and_evaluate(tiny_lm_config(bbc, total_steps=1, eval_batch_size=24), str(tmp_path / 'b'))
    assert r1['val/loss'] == pytest.approx(r2['val/loss'], rel=1e-6)


def test_nan_loss_stops_with_step_and_last_checkpoint(bbc, tmp_path):
    config = tiny_lm_config(bbc, total_steps=9, optim__lr=1e30, optim__clip_norm=0.0,
                            optim__warmup_steps=0, model__dropout=0.0)
    with pytest.raises(FloatingPointError, match=r'at step \d+; last good checkpoint'):
        train_and_evaluate(config, str(tmp_path / 'nan'))


def test_damaged_latest_checkpoint_falls_back(bbc, tmp_path):
    workdir = str(tmp_path / 'run')
    config = tiny_lm_config(bbc)
    train_and_evaluate(config, workdir)
    step_dir = os.path.join(workdir, 'checkpoints', '6')
    for root, _, files in os.walk(step_dir):  # truncate every data file of the last step
        for f in files:
            if not f.endswith('.json'):
                open(os.path.join(root, f), 'wb').close()
    assert checkpoint.load_params(os.path.join(workdir, 'checkpoints'))[0] == 3
