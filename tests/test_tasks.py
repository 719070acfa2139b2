"""Every registered task honours the protocol (research/tasks/base.py) end to end."""

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config

from research import main as main_lib
from research import tasks
from research.config import ConfigError, validate
from research.data.batching import padded_batches
from research.tasks.base import Task


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
