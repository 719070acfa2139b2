"""Evaluators: the same numbers at any batch size and mesh, exact scoring, seeds, bad input."""

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config

from research import evaluators, sharding, tasks
from research.config import ConfigError, validate
from research.data import subset
from research.evaluators.common import Context
from research.text import vocab as vocab_lib
from research.train import init_state

SPLIT = 'test[:19]'  # 19 examples: batches of 7 and 8 end padded


def tiny_config(bbc, task, arch, **overrides):
    c = tiny_lm_config(bbc, **overrides)
    c.task, c.model.arch, c.model.dropout = task, arch, 0.0
    c.data.eval_split = SPLIT
    return c


def context(config, devices, workdir, task=None):
    """A Context and freshly initialised params on a mesh over `devices` (the task, with its
    cache of encoded splits, may be shared)."""
    mesh = sharding.make_mesh(config.mesh, devices)
    task = task or tasks.get(config)
    vocab = task.load_vocab()
    model, _, _, abstract, init_fn = init_state(task, config, len(vocab), mesh)
    params = init_fn(jax.random.key(0)).params
    shardings = jax.tree.map(lambda a: a.sharding, abstract.params)
    return Context(config, task, vocab, model, mesh, shardings, str(workdir), log=lambda *_: None), params


WORDS = (
    ('business', 'business'),
    ('entertainment', 'film'),
    ('politics', 'government'),
    ('sports', 'sport'),
    ('tech', 'technology'),
)
CASES = {  # name: (task, arch, evaluator options)
    'task_bag': ('classify', 'bag', dict(type='task')),
    'task_lm': ('lm', 'gpt', dict(type='task')),
    'task_mlm': ('mlm', 'bert', dict(type='task')),
    'similarity': (
        'classify',
        'bert',
        dict(type='zero_shot_similarity', template='about {label}', labels=(('tech', ('computers', 'phones')),)),
    ),
    'probe': ('classify', 'bert', dict(type='probe', k=2, seeds=(0, 1), steps=50)),
    'cloze': ('mlm', 'bert', dict(type='zero_shot_cloze', labels=WORDS)),
    'choice': ('lm', 'gpt', dict(type='zero_shot_choice', labels=WORDS, max_text_tokens=20)),
    'in_context': (
        'lm',
        'gpt',
        dict(type='in_context', labels=WORDS, k=1, seeds=(0, 1), max_text_tokens=8, demo_tokens=4),
    ),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_same_numbers_at_any_batch_size_and_mesh(bbc, tmp_path, case):
    task, arch, options = CASES[case]
    results, shared = [], None
    for devices, batch_size in ((1, 1), (1, 7), (1, 64), (8, 8), (8, 64)):
        config = tiny_config(bbc, task, arch)
        config.evals.ev = dict(options, batch_size=batch_size)
        if options['type'] in ('probe', 'zero_shot_similarity'):  # no cache: each run computes
            config.evals.ev.cache_dir = str(tmp_path / f'{devices}_{batch_size}')
        ctx, params = context(config, jax.devices()[:devices], tmp_path, shared)
        shared = ctx.task
        [ev] = evaluators.build(ctx)
        results.append(ev.run(params))
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for k in results[0]:  # perplexities: relative
            assert other[k] == pytest.approx(results[0][k], rel=1e-5, abs=1e-5), (case, k)
    if task != 'lm' or options['type'] != 'task':  # classification evaluators count examples
        prefix = 'test_19/' + ('' if options['type'] == 'task' else 'ev/')
        assert any(k.startswith(prefix) for k in results[0]), results[0]


def test_choice_scores_equal_a_plain_loop(bbc, tmp_path):
    config = tiny_config(bbc, 'lm', 'gpt')
    config.evals.ev = dict(type='zero_shot_choice', labels=WORDS, max_text_tokens=12, batch_size=8)
    ctx, params = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    texts = ['The bank said profits rose sharply this year.', 'A new phone from the firm.']
    contexts, continuations = zip(*[ev.parts(t) for t in texts])
    scores = ev.scores(params, contexts, continuations)

    def loop(ctx_ids, cont):  # a plain loop over the label's tokens, one unpadded sequence
        seq = [vocab_lib.EOS_ID] + ctx_ids + cont
        logits = ctx.model.apply({'params': params}, np.array([seq[:-1]]))[0]
        logp = jax.nn.log_softmax(np.asarray(logits, np.float64), axis=-1)
        total = 0.0
        for t in range(len(seq) - 1 - len(cont), len(seq) - 1):
            total += float(logp[t, seq[t + 1]])
        return total

    empty = ev.parts('')[0]  # the template around an empty text: calibration's reference
    for i, (ctx_ids, conts) in enumerate(zip(contexts, continuations)):
        for c, cont in enumerate(conts):
            expected = loop(ctx_ids, cont)
            assert scores[''][i, c] == pytest.approx(expected, abs=1e-4)
            assert scores['_norm'][i, c] == pytest.approx(expected / len(cont), abs=1e-4)
            assert scores['_calibrated'][i, c] == pytest.approx(expected - loop(empty, cont), abs=1e-4)


def test_choice_join_is_exact_and_checked(bbc, tmp_path):
    config = tiny_config(bbc, 'lm', 'gpt')
    config.evals.ev = dict(type='zero_shot_choice', labels=WORDS, template='{text} -- topic: {label}.')
    ctx, _ = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    text = "Shares in the firm's U.S. arm fell 3.5% on Monday"
    context_ids, continuations = ev.parts(text)
    for (_, word), cont in zip(WORDS, continuations):
        # Tokenized in parts, the sequence is exactly the whole prompt tokenized at once.
        assert context_ids + cont == ev.encode(f'{text} -- topic: {word}.')
        assert ev.rows(context_ids, [cont])[0][1][-len(cont) :] == cont
    config.evals.ev.template = '{text} topic{label}'  # no space: the word fuses with the label
    ctx, _ = context(config, jax.devices()[:1], tmp_path)
    with pytest.raises(ConfigError, match='context/continuation join'):
        evaluators.build(ctx)  # checked on the first example when built, before anything runs


def test_context_is_cut_from_the_left(bbc, tmp_path):
    config = tiny_config(bbc, 'lm', 'gpt')
    config.evals.ev = dict(type='zero_shot_choice', labels=WORDS, max_len=10)
    ctx, _ = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    inputs, targets, weights = ev.rows(list(range(100, 120)), [[7, 8]])[0]
    assert len(inputs) == 10 and inputs[0] == vocab_lib.EOS_ID and inputs[1:9] == list(range(112, 120))
    assert targets[-2:] == [7, 8] and weights == [0.0] * 8 + [1.0, 1.0]


def test_k_shot_draws():
    labels = np.repeat(np.arange(5), [30, 3, 20, 20, 8])
    a, again, b = (subset.k_per_class(labels, 3, s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, b)
    assert np.bincount(labels[a]).tolist() == [3] * 5
    with pytest.raises(ValueError, match="k=4 examples per class, but class 'b' has only 3"):
        subset.k_per_class(labels, 4, 0, class_names='abcde')


def test_k_shot_fine_tuning_and_probe_use_the_same_examples(bbc, tmp_path):
    config = tiny_config(bbc, 'classify', 'bert', batch_size=8)
    config.data.train_examples_per_class, config.data.subset_seed = 2, 5
    task = tasks.get(config)
    vocab = task.load_vocab()
    train = task.train_data(vocab, slice(0, 8), None)
    seen = np.concatenate([next(train)['inputs'] for _ in range(5)])  # 10 examples: 1 epoch + 3 batches
    subset_ids = task.train_subset(vocab)['ids']
    assert len(subset_ids) == 10 and {r.tobytes() for r in seen} <= {r.tobytes() for r in subset_ids}
    examples = task.examples(vocab, 'train')
    drawn = examples['inputs'][subset.k_per_class(examples['labels'], 2, 5)]
    np.testing.assert_array_equal(drawn, subset_ids)  # the probe's draw for seed 5
    config.data.subset_seed = 6
    other = tasks.get(config).train_subset(vocab)['ids']
    assert not np.array_equal(other, subset_ids)


def test_probe_and_in_context_seeds(bbc, tmp_path):
    config = tiny_config(bbc, 'lm', 'gpt')
    config.evals.ev = dict(type='in_context', labels=WORDS, k=1, seeds=(0, 1, 0))
    ctx, params = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    assert ev.demos[0] == ev.demos[2] and ev.demos[0] != ev.demos[1]
    config = tiny_config(bbc, 'classify', 'bert')
    config.evals.ev = dict(type='probe', k=2, seeds=(3, 3), steps=30, cache_dir=str(tmp_path / 'c'))
    ctx, params = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    first = ev.run(params)
    assert first['test_19/ev/accuracy_std'] == 0.0  # one seed twice: the same draw, the same probe
    assert ev.run(params) == first  # second run: features from the cache, same numbers
    assert len(list((tmp_path / 'c').iterdir())) == 2  # train rows and the eval split


@pytest.mark.parametrize(
    'entry,needle',
    [
        (dict(type='few_shot'), "unknown evaluator type 'few_shot'"),
        (dict(type='zero_shot_similarity', template='This is about it.'), 'has no {label}'),
        (dict(type='zero_shot_choice', template='{text} is about {topic}'), 'unknown placeholder {topic}'),
        (dict(type='probe', kk=3), "config.evals.ev.kk: unknown option of type 'probe'"),
        (dict(type='probe', k='four'), 'config.evals.ev.k must be int'),
        (dict(type='zero_shot_cloze', template='{text} about it'), 'needs one [MASK] after {text}'),
        (dict(type='task', batch_size=12), 'config.evals.ev.batch_size=12 is not divisible by the 8'),
        (dict(type='zero_shot_similarity', template='{label} or {label}'), 'has {label} 2 times; use it once'),
        (dict(type='probe', split='train'), "split and train_split are both 'train'"),
        (dict(type='zero_shot_similarity', pooling='target'), "needs target_word, which task 'classify' with"),
        (dict(type='zero_shot_cloze'), "needs masked_token_logits, which task 'classify' with model.arch 'bert'"),
    ],
)
def test_bad_evaluator_config_is_one_clear_error(bbc, entry, needle):
    config = tiny_config(bbc, 'classify', 'bert')
    config.evals.ev = entry
    with pytest.raises(ConfigError) as e:
        validate(config, 8)
    assert needle in str(e.value) and '\n' not in str(e.value)


def test_k_larger_than_a_class_fails_before_running(bbc, tmp_path):
    config = tiny_config(bbc, 'classify', 'bert')
    config.evals.ev = dict(type='probe', k=10_000)
    ctx, _ = context(config, jax.devices()[:1], tmp_path)
    with pytest.raises(ValueError, match=r"k=10000 examples per class, but class '\w+' has only \d+"):
        evaluators.build(ctx)


@pytest.mark.parametrize(
    'task,arch,entry,needle',
    [
        ('lm', 'gpt', dict(type='zero_shot_choice', max_len=100), 'max_len=100 exceeds config.model.max_len=64'),
        ('lm', 'gpt', dict(type='probe'), "(type 'probe') needs examples, pooled, which task 'lm' with model.arch"),
        ('mlm', 'bert', dict(type='task'), "tokenizer='wordpiece': task 'mlm' reads a word vocabulary"),
    ],
)
def test_an_evaluator_the_model_cannot_serve_is_a_config_error(bbc, task, arch, entry, needle):
    config = tiny_config(bbc, task, arch)
    config.evals.ev = entry
    if task == 'mlm':
        config.data.tokenizer = 'wordpiece'
    with pytest.raises(ConfigError) as e:
        validate(config, 8)
    assert needle in str(e.value)


def test_in_context_reports_the_demonstrations_it_kept(bbc, tmp_path):
    config = tiny_config(bbc, 'lm', 'gpt')
    config.evals.ev = dict(type='in_context', labels=WORDS, k=2, seeds=(0,), max_text_tokens=8, demo_tokens=4)
    ctx, params = context(config, jax.devices()[:1], tmp_path)
    [ev] = evaluators.build(ctx)
    kept = ev.run(params)['test_19/ev/demonstrations']  # 10 demonstrations, 32 positions
    demo = np.mean([len(d) for d in ev.demos[0]])
    assert 1 <= kept < 10 and kept == pytest.approx((32 - 13) / demo, abs=1.5)
