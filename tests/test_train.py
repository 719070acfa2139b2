"""End-to-end trainer runs on real BBC News text with tiny models."""

import json
import os
import re
import shutil

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config

from research import checkpoint, generate
from research import main as main_lib
from research.train import train_and_evaluate


def params_at(workdir, step):
    return checkpoint.load_params(os.path.join(workdir, 'checkpoints'), step)[1]


def events(workdir):
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


def data_position(workdir, step):
    with open(os.path.join(workdir, 'checkpoints', str(step), 'data', 'metadata')) as f:
        return json.load(f)


def test_resume_is_bitwise_exact(bbc, tmp_path):
    """Train 6 steps; separately, train, drop the step-6 checkpoint and resume from step 3."""
    straight, resumed = str(tmp_path / 'a'), str(tmp_path / 'b')
    config = tiny_lm_config(bbc, eval_every=3)
    train_and_evaluate(config, straight)
    train_and_evaluate(config, resumed)
    shutil.rmtree(os.path.join(resumed, 'checkpoints', '6'))
    train_and_evaluate(config, resumed)  # restores step 3: params, opt state, data position
    # The second run in `resumed` really resumed: it logged train steps 4 and 6 only, and
    # did not evaluate at step 0 or 3 again.
    assert [e['step'] for e in events(resumed) if 'train/loss' in e] == [2, 3, 4, 6, 4, 6]
    assert [e['step'] for e in events(resumed) if 'val/loss' in e] == [0, 3, 6, 6]
    a, b = params_at(straight, 6), params_at(resumed, 6)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert data_position(straight, 6) == data_position(resumed, 6)
    first = params_at(straight, 3)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, a, first))), 'training moved params'


def test_metrics_outputs_and_generate_cli(bbc, tmp_path, capsys):
    """The documented entry point end to end, then research.generate on its workdir."""
    workdir = str(tmp_path / 'run')
    overrides = [
        f'--config.data.data_dir={bbc["data_dir"]}',
        f'--config.data.vocab_path={bbc["vocab_path"]}',
        '--config.data.seq_len=32',
        '--config.data.max_eval_sequences=24',
        '--config.model.num_layers=1',
        '--config.model.d_model=32',
        '--config.model.num_heads=2',
        '--config.model.mlp_dim=64',
        '--config.batch_size=16',
        '--config.eval_batch_size=16',
        '--config.progress_bar=False',
        '--config.sample.prompts=("the government",)',
        '--config.sample.max_new_tokens=5',
    ]
    assert (
        main_lib.main(
            [
                '--config',
                'experiments/quickstart.py:size=tiny,runlocal',
                '--workdir',
                workdir,
                '--config.total_steps=4',
                '--config.seed=1',
            ]
            + overrides
        )
        == 0
    )
    out = capsys.readouterr().out
    assert 'final: ' in out and 'val/unigram_perplexity' in out
    names = set().union(*events(workdir))
    for name in (
        'step',
        'train/loss',
        'val/loss',
        'val/perplexity',
        'train/tokens_per_sec',
        'train/mfu',
        'val/unigram_perplexity',
        'data/train_docs',
    ):
        assert name in names, name
    last = [e for e in events(workdir) if 'val/loss' in e][-1]
    assert last['val/perplexity'] == pytest.approx(np.exp(last['val/loss']))
    assert os.path.getsize(os.path.join(workdir, 'loss_curve.png')) > 1000
    assert open(os.path.join(workdir, 'samples.txt')).read().startswith('the government')
    resolved = json.load(open(os.path.join(workdir, 'config.json')))
    assert (resolved['total_steps'], resolved['seed'], resolved['model']['d_model']) == (4, 1, 32)
    assert os.listdir(os.path.join(workdir, 'tensorboard'))

    assert (
        generate.main(['--workdir', workdir, '--prompt', 'the film', '--prompt', 'shares', '--max_new_tokens', '4'])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == '# checkpoint step 4' and lines[1].startswith('the film ⟶ ') and len(lines) == 3


def test_eval_is_batch_size_invariant(bbc, tmp_path):
    """24 eval sequences: batches of 8 (3 full) vs 16 (one full, one padded with 8 rows)."""
    r1 = train_and_evaluate(tiny_lm_config(bbc, total_steps=1, eval_batch_size=8), str(tmp_path / 'a'))
    r2 = train_and_evaluate(tiny_lm_config(bbc, total_steps=1, eval_batch_size=16), str(tmp_path / 'b'))
    assert r1['val/loss'] == pytest.approx(r2['val/loss'], rel=1e-6)
    assert r1['val/accuracy'] == r2['val/accuracy']


def test_nan_loss_stops_with_step_and_last_good_checkpoint(bbc, tmp_path):
    config = tiny_lm_config(
        bbc,
        total_steps=9,
        checkpoint_every=1,
        optim__lr=1e30,
        optim__clip_norm=0.0,
        optim__warmup_steps=0,
        model__dropout=0.0,
    )
    with pytest.raises(FloatingPointError, match=r'at step (\d+); last good checkpoint: step (\d+)') as e:
        train_and_evaluate(config, str(tmp_path / 'nan'))
    bad, good = map(int, re.search(r'at step (\d+); last good checkpoint: step (\d+)', str(e.value)).groups())
    assert good == bad - 1
    params = params_at(str(tmp_path / 'nan'), good)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_damaged_latest_checkpoint_is_set_aside_and_redone(bbc, tmp_path):
    workdir = str(tmp_path / 'run')
    config = tiny_lm_config(bbc)
    train_and_evaluate(config, workdir)
    reference = params_at(workdir, 6)
    step_dir = os.path.join(workdir, 'checkpoints', '6')
    for root, _, files in os.walk(step_dir):  # truncate every data file of the last step
        for f in files:
            if not f.endswith('.json') and 'metadata' not in f:
                open(os.path.join(root, f), 'wb').close()
    assert checkpoint.load_params(os.path.join(workdir, 'checkpoints'))[0] == 3
    train_and_evaluate(config, workdir)  # resumes from 3, redoes 4..6
    assert os.path.isdir(step_dir + '.unreadable')
    jax.tree.map(np.testing.assert_array_equal, params_at(workdir, 6), reference)


def test_changed_model_config_is_a_clear_error(bbc, tmp_path):
    workdir = str(tmp_path / 'run')
    train_and_evaluate(tiny_lm_config(bbc, total_steps=3), workdir)
    with pytest.raises(checkpoint.CheckpointError, match='use a new --workdir'):
        train_and_evaluate(tiny_lm_config(bbc, total_steps=6, model__d_model=64), workdir)
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3'], 'nothing was touched'


def test_evaluate_cli_checkpoint_or_init_from(bbc, tmp_path, capsys):
    """research.evaluate: the workdir's newest checkpoint, else config.init_from, else a clear error."""
    from research import evaluate

    trained, fresh, empty = (str(tmp_path / d) for d in 'abc')
    args = [
        '--config',
        'experiments/classify/bbc_news_bag.py:runlocal',
        f'--config.data.data_dir={bbc["data_dir"]}',
        f'--config.data.vocab_path={bbc["vocab_path"]}',
        '--config.progress_bar=False',
        '--config.peak_flops=1e9',
        '--config.data.eval_split=test',
    ]
    assert main_lib.main(args + ['--workdir', trained, '--config.total_steps=6']) == 0
    trained_result = json.load(open(os.path.join(trained, 'results.json')))
    capsys.readouterr()
    assert evaluate.run(args + ['--workdir', trained, '--config.evals.task=dict(type="task", split="validation")']) == 0
    assert 'val/accuracy' in capsys.readouterr().out
    result = json.load(open(os.path.join(trained, 'results.json')))
    assert result['step'] == 6 and 'val/accuracy' in result and 'test/accuracy' not in result  # this run's only
    assert [e['step'] for e in events(trained) if 'val/accuracy' in e] == [6]
    assert evaluate.run(args + ['--workdir', fresh, f'--config.init_from={trained}']) == 0
    assert json.load(open(os.path.join(fresh, 'results.json')))['test/accuracy'] == trained_result['test/accuracy']
    assert not os.listdir(os.path.join(fresh, 'checkpoints')), 'evaluation saves no checkpoint'
    capsys.readouterr()
    assert evaluate.run(args + ['--workdir', empty]) == 2
    assert (
        capsys.readouterr().err.strip() == f'error: nothing to evaluate: {empty} has no checkpoint and '
        f'config.init_from is empty'
    )


def test_generate_refuses_a_non_lm_workdir(bbc, tmp_path, capsys):
    workdir = str(tmp_path)
    config = tiny_lm_config(bbc, total_steps=2, task='classify')
    config.model.arch = 'bag'
    train_and_evaluate(config, workdir)
    assert generate.main(['--workdir', workdir, '--prompt', 'the']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and "trained task 'classify'" in err and len(err.splitlines()) == 1
