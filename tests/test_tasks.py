"""Every registered task honours the protocol (research/tasks/base.py) end to end."""

import os

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config

from research import evaluators, tasks
from research import main as main_lib
from research.config import ConfigError, validate
from research.data.batching import padded_batches
from research.tasks.base import CAPABILITIES, Task


def task_config(bbc, name):
    c = tiny_lm_config(bbc, task=name)
    c.model.arch = tasks.ARCHS[name][-1]
    c.data.eval_split = 'test[:10]'
    return c


@pytest.mark.parametrize('name', tasks.TASKS)
def test_every_task_conforms(bbc, wic, bbc_spm, name):
    config = task_config(bbc, name)
    if name == 'tag':  # word labels: the miniature WordNet, words looked up in the BBC vocab
        config.data.update(name='wordnet_wic', data_dir=wic, text_key='words', label_key='supersense')
    if name == 'translate':  # BBC text to itself, with SentencePiece pieces
        config.data.update(source_key='text', target_key='text', vocab_path=bbc_spm)
    task = tasks.get(config)
    assert isinstance(task, Task) and task.name == name and tasks.task_class(name) is type(task)
    vocab = task.load_vocab()
    model = task.build_model(len(vocab))
    params = model.init(jax.random.key(0), *task.dummy_inputs(), train=False)['params']
    train = task.train_data(vocab, slice(0, config.batch_size), None)
    batch = next(train)
    assert isinstance(train.state, dict) and train.stats is not None
    loss_sum, sums = task.loss(model, params, batch, jax.random.key(1), train=True)
    assert np.isfinite(float(loss_sum)) and {'loss', 'weight'} <= set(sums)
    arrays, stats = task.eval_arrays(vocab, config.data.eval_split)
    rows = next(padded_batches(arrays, 64, slice(0, 64)))
    _, eval_sums = task.loss(model, params, task.eval_batch(vocab, rows), jax.random.key(1), train=False)
    metrics = task.summarize(jax.device_get(eval_sums))
    assert task.headline in metrics and np.isfinite(metrics['loss'])
    assert set(task.baselines(vocab, config.data.eval_split)) <= {task.baseline} | set(metrics) | {'majority_accuracy'}
    assert task.flops_per_token(params) > 0
    offered = type(task).offers(config.model.arch)
    assert offered <= set(CAPABILITIES) and offered, offered
    for capability in sorted(offered):  # each one works as CAPABILITIES says
        check_capability(capability, task, vocab, params, config)


def check_capability(capability, task, vocab, params, config):
    t = config.data.seq_len
    batch = {'inputs': np.full((2, t), 5, np.int32), 'mask': np.arange(t)[None] < np.array([[t], [3]])}
    if capability in ('next_token_logits', 'masked_token_logits'):
        logits = getattr(task, capability)(vocab)(params, batch)
        assert logits.shape == (2, t, len(vocab)) and logits.dtype == np.float32
    elif capability in ('examples', 'target_word'):
        ex = task.examples(vocab, config.data.eval_split)
        n = len(ex['labels'])
        assert n and ex['inputs'].shape == ex['mask'].shape == (n, t)
        assert capability != 'target_word' or (
            ex['position'].shape == (n,) and ex['mask'][np.arange(n), ex['position']].all()
        )
    elif capability == 'encode_text':
        ids = task.encode_text(vocab, 'the market fell')
        assert 0 < len(ids) <= t and all(isinstance(i, int) for i in ids)
    elif capability == 'pooled':
        features = task.pooled(vocab, 'mean')(params, batch)
        assert features.shape == (2, config.model.d_model) and features.dtype == np.float32
    elif capability == 'translate':
        tokens = task.translate(vocab, beam=1, alpha=0.0, a=1.0, b=2)(
            params, {'source': batch['inputs'], 'source_mask': batch['mask']}
        )
        assert tokens.shape == (2, config.model.max_len)
    else:  # load_hf: reads a real checkpoint (tests/test_convert.py loads MiniLM through it)
        assert capability == 'load_hf' and callable(task.load_hf)


# Which evaluator runs on which task and model (README "What evaluates what" prints this table).
EXPECTED_MATRIX = {
    ('lm', 'gpt'): ['task', 'zero_shot_choice', 'in_context'],
    ('classify', 'bag'): ['task'],
    ('classify', 'bert'): ['task', 'zero_shot_similarity', 'probe'],
    ('tag', 'bert'): ['task', 'zero_shot_similarity', 'probe'],
    ('mlm', 'bert'): ['task', 'zero_shot_cloze'],
    ('mlm', 'encoder'): ['task', 'zero_shot_cloze'],
    ('contrastive', 'bert'): ['task', 'zero_shot_similarity', 'probe'],
    ('translate', 'seq2seq'): ['task', 'translate'],
}


def matrix_markdown(matrix) -> str:
    types = list(evaluators.TYPES)
    lines = ['| task (model.arch) | ' + ' | '.join(f'`{t}`' for t in types) + ' |', '|---' * (len(types) + 1) + '|']
    for (task, arch), runs in matrix.items():
        lines.append(f'| {task} ({arch}) | ' + ' | '.join('✓' if t in runs else '' for t in types) + ' |')
    return '\n'.join(lines)


def test_which_evaluator_runs_on_which_task_is_decided_by_capabilities():
    matrix = evaluators.matrix()
    assert matrix == EXPECTED_MATRIX
    readme = open(os.path.join(os.path.dirname(__file__), '..', 'README.md'), encoding='utf-8').read()
    assert matrix_markdown(matrix) in readme, 'README table out of date; paste:\n' + matrix_markdown(matrix)


def test_a_task_that_cannot_load_a_hf_checkpoint_is_a_config_error(bbc, tmp_path, capsys):
    config = task_config(bbc, 'lm')
    config.init_from = 'hf:/some/minilm'
    with pytest.raises(ConfigError, match='a Hugging Face BERT checkpoint loads into tasks'):
        validate(config, 8)
    code = main_lib.main(
        [
            '--config',
            'experiments/quickstart.py:runlocal',
            '--workdir',
            str(tmp_path / 'w'),
            '--config.init_from=hf:/some/minilm',
            f'--config.data.vocab_path={bbc["vocab_path"]}',
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "task 'lm' with model.arch 'gpt'" in err, err
