"""MLM pretraining through the one trainer: loss goes down; masks are host/batch invariant;
an MLM checkpoint initialises a classifier's encoder."""

import json
import os

import numpy as np
import pytest

from conftest import tiny_lm_config
from research import checkpoint
from research.tasks import mlm
from research.train import train_and_evaluate


def mlm_config(bbc, arch='bert', **overrides):
    c = tiny_lm_config(bbc, **overrides)
    c.task, c.model.arch = 'mlm', arch
    return c


@pytest.mark.parametrize('arch', ['bert', 'encoder'])
def test_tiny_mlm_run_lowers_mlm_loss(bbc, tmp_path, arch):
    workdir = str(tmp_path / arch)
    config = mlm_config(bbc, arch, total_steps=30, eval_every=0, optim__lr=3e-3, model__dropout=0.0)
    result = train_and_evaluate(config, workdir)
    evals = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl')) if '"val/loss"' in l]
    assert result['val/loss'] < evals[0]['val/loss'] - 1.0, (evals[0]['val/loss'], result['val/loss'])


def test_masks_do_not_depend_on_host_split_or_eval_batch_size(bbc):
    config = mlm_config(bbc)
    vocab = mlm.load_vocab(config)
    full = mlm.make_data(config, vocab, slice(0, 16), slice(0, 16))
    halves = [mlm.make_data(config, vocab, slice(i * 8, i * 8 + 8), slice(0, 16)) for i in range(2)]
    a = next(full.train)
    parts = [next(h.train) for h in halves]
    for key in a:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), a[key])
    assert full.train.state == {'epoch': 0, 'batch': 1}
    config.eval_batch_size = 8
    small = mlm.make_data(config, vocab, slice(0, 16), slice(0, 8))
    big = np.concatenate([b['inputs'] for b in full.eval_batches()])
    little = np.concatenate([b['inputs'] for b in small.eval_batches()])
    np.testing.assert_array_equal(big[:len(little)][:24], little[:24])


def test_mlm_checkpoint_initialises_a_classifier(bbc, tmp_path, capsys):
    pre = str(tmp_path / 'mlm')
    train_and_evaluate(mlm_config(bbc, total_steps=2), pre)
    c = tiny_lm_config(bbc, total_steps=2, init_from=pre)
    c.task, c.model.arch = 'classify', 'bert'
    train_and_evaluate(c, str(tmp_path / 'cls'))
    assert '2 new (head/classifier/bias, head/classifier/kernel)' in capsys.readouterr().out
    enc = checkpoint.load_params(os.path.join(pre, 'checkpoints'))[1]['encoder']['embed']['embedding']
    assert enc.shape[1] == 32
