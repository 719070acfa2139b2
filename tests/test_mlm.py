"""MLM pretraining through the one trainer: loss goes down; masks are host/batch invariant;
an MLM checkpoint initialises a classifier's encoder."""

import json
import os

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config

from research import checkpoint, tasks
from research.data.batching import padded_batches
from research.train import train_and_evaluate


def mlm_config(bbc, arch='bert', **overrides):
    c = tiny_lm_config(bbc, **overrides)
    c.task, c.model.arch = 'mlm', arch
    return c


@pytest.mark.parametrize('arch', ['bert', 'encoder'])
def test_tiny_mlm_run_lowers_mlm_loss(bbc, tmp_path, arch):
    workdir = str(tmp_path / arch)
    config = mlm_config(bbc, arch, total_steps=30, eval_every=30, optim__lr=3e-3, model__dropout=0.0)
    result = train_and_evaluate(config, workdir)
    evals = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl')) if '"val/loss"' in line]
    assert result['val/loss'] < evals[0]['val/loss'] - 1.0, (evals[0]['val/loss'], result['val/loss'])


def test_masks_do_not_depend_on_host_split_or_eval_batch_size(bbc):
    config = mlm_config(bbc)
    task = tasks.get(config)
    vocab = task.load_vocab()
    full = task.train_data(vocab, slice(0, 16), None)
    halves = [task.train_data(vocab, slice(i * 8, i * 8 + 8), None) for i in range(2)]
    a = next(full)
    parts = [next(h) for h in halves]
    for key in a:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), a[key])
    assert full.state['step'] == 1 and full.state['rows'][:8] == halves[0].state['rows']
    arrays, _ = task.eval_arrays(vocab, config.data.eval_split)

    def masked(size, rows):
        return np.concatenate([task.eval_batch(vocab, b)['inputs'] for b in padded_batches(arrays, size, rows)])

    big, little = masked(16, slice(0, 16)), masked(8, slice(0, 8))
    np.testing.assert_array_equal(big[:24], little[:24])
    assert (big[:24] != arrays['tokens'][:24]).mean() > 0.05  # the masks are really applied


def test_mlm_checkpoint_initialises_a_classifier(bbc, tmp_path, capsys):
    """The classifier's encoder (frozen here, so it keeps what it loaded) is the MLM's, tensor for tensor."""
    pre = str(tmp_path / 'mlm')
    train_and_evaluate(mlm_config(bbc, total_steps=2), pre)
    c = tiny_lm_config(bbc, total_steps=2, init_from=pre, optim__freeze='^encoder/')
    c.task, c.model.arch = 'classify', 'bert'
    train_and_evaluate(c, str(tmp_path / 'cls'))
    assert '2 new (head/classifier/bias, head/classifier/kernel)' in capsys.readouterr().out
    mlm_encoder = checkpoint.load_params(os.path.join(pre, 'checkpoints'))[1]['encoder']
    classifier = checkpoint.load_params(os.path.join(tmp_path, 'cls', 'checkpoints'))[1]
    jax.tree.map(np.testing.assert_array_equal, classifier['encoder'], mlm_encoder)
    assert classifier['head']['classifier']['kernel'].shape == (32, 5)
