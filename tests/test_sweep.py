"""Sweeps: points, validation before running, resume after a kill, the results table, TPE."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from research import results, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = """
from research.config import base_config, parse_arg
from research.sweep import product

REPORT = dict(objective='accuracy', split='val')


def get_config(arg=''):
    a = parse_arg(arg, lr=0.01, seed=0)
    c = base_config()
    c.task, c.model.arch = 'classify', 'bag'
    c.data.update(data_dir={data_dir!r}, vocab_path={vocab!r}, seq_len=32)
    c.model.update(d_model=16, dropout=0.0)
    c.update(batch_size=16, eval_batch_size=64, total_steps=40, log_every=10, eval_every=0, checkpoint_every=2,
             progress_bar=False, peak_flops=1e9)
    c.optim.lr, c.optim.warmup_steps = a.lr, 2
    c.seed = c.data.seed = a.seed
    return c


def get_sweep(arg=''):
    return {points}
"""


def experiment(tmp_path, bbc, points='product(lr=[0.01], seed=[0, 1])', name='exp.py'):
    path = tmp_path / name
    path.write_text(EXPERIMENT.format(data_dir=bbc['data_dir'], vocab=bbc['vocab_path'], points=points))
    return str(path)


def run_sweep(*args, wait=True):
    cmd = [sys.executable, '-m', 'research.sweep', *args]
    if not wait:
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


@pytest.mark.slow  # ~50 s: kills and restarts a sweep of real runs (make test-slow; CI runs it)
@pytest.mark.xfail(
    reason='KNOWN BUG (stop 19): the killed sweep point survives in its own session and finishes', strict=False
)
def test_killed_sweep_resumes_and_gives_the_same_table(bbc, tmp_path):
    exp = experiment(tmp_path, bbc)
    reference, resumed = str(tmp_path / 'a'), str(tmp_path / 'b')
    done = run_sweep('--config', exp, '--workdir', reference)
    assert done.returncode == 0, done.stderr
    proc = run_sweep('--config', exp, '--workdir', resumed, wait=False)
    second = os.path.join(resumed, 'lr=0.01,seed=1')
    while not os.path.isdir(os.path.join(second, 'checkpoints', '4')) and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep, mid-point
    proc.wait()
    assert os.path.exists(os.path.join(resumed, 'lr=0.01,seed=0', 'results.json'))
    assert not os.path.exists(os.path.join(second, 'results.json')), 'the kill came too late to test anything'
    again = run_sweep('--config', exp, '--workdir', resumed)
    assert again.returncode == 0, again.stderr
    assert 'lr=0.01,seed=0: done, skipped' in again.stdout and 'resumed from step' in again.stdout
    assert read_csv(os.path.join(resumed, 'results.csv')) == read_csv(os.path.join(reference, 'results.csv'))
    t = time.time()
    third = run_sweep('--config', exp, '--workdir', resumed)
    assert third.stdout.count('done, skipped') == 2 and time.time() - t < 60
    assert read_csv(os.path.join(resumed, 'results.csv')) == read_csv(os.path.join(reference, 'results.csv'))
    md = open(os.path.join(resumed, 'results.md')).read()
    assert '| 0.01 | val | task |' in md and '(n=2)' in md and '★' in md


def test_bad_points_fail_before_any_point_runs(bbc, tmp_path, capsys):
    exp = experiment(tmp_path, bbc, "[dict(lr=0.1), {'optim.lrr': 1.0}]")
    assert sweep.main(['--config', exp, '--workdir', str(tmp_path / 's')]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "error: sweep point optim.lrr=1: unknown config key 'optim.lrr'; see research/config.py base_config()"
    ), err
    assert not (tmp_path / 's').exists()
    exp = experiment(tmp_path, bbc, '[dict(lr=0.1, size=3)]', name='exp2.py')
    assert sweep.main(['--config', exp, '--workdir', str(tmp_path / 's')]) == 2
    assert "unknown config argument 'size'" in capsys.readouterr().err
    exp = experiment(tmp_path, bbc, '[dict(lr=0.1), dict(lr=0.2)]', name='exp3.py')
    assert sweep.main(['--config', exp, '--workdir', str(tmp_path / 's'), '--only', 'lr=0.3']) == 2
    assert "--only 'lr=0.3' matches no point" in capsys.readouterr().err


def test_dry_run_prints_one_command_per_point(bbc, tmp_path, capsys):
    exp = experiment(tmp_path, bbc, "product(lr=[0.1, 0.2], seed=[3]) + [{'lr': 0.3, 'optim.b1': 0.8}]")
    assert sweep.main(['--config', exp, '--workdir', str(tmp_path / 's'), '--dry_run', '--only', 'lr=0.[13]']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f'--config {exp}:lr=0.1,seed=3 --workdir {tmp_path}/s/lr=0.1,seed=3')
    assert lines[1].endswith(f'--workdir {tmp_path}/s/lr=0.3,optim.b1=0.8 --config.optim.b1=0.8')
    assert not (tmp_path / 's').exists()
    # A cluster launcher hands points off: one submit command each, nothing run here.
    assert sweep.main(['--config', exp, '--workdir', str(tmp_path / 's'), '--launcher', 'slurm', '--only', '0.3']) == 0
    out = capsys.readouterr().out
    assert 'sbatch --job-name lr=0.3,optim.b1=0.8 --output ' in out and 'launch/slurm.sbatch --config ' in out
    assert '--config.optim.b1=0.8' in out and not os.path.exists(
        tmp_path / 's' / 'lr=0.3,optim.b1=0.8' / 'results.json'
    )


def test_space_helpers():
    assert sweep.product(a=[1, 2], b=['x']) == [dict(a=1, b='x'), dict(a=2, b='x')]
    assert sweep.zip_(a=[1, 2], b=[3, 4]) == [dict(a=1, b=3), dict(a=2, b=4)]
    with pytest.raises(ValueError, match='one length'):
        sweep.zip_(a=[1], b=[1, 2])
    space = {'optim.lr': sweep.loguniform(1e-5, 1e-2), 'optim.warmup_steps': sweep.choice([0, 10])}
    a, b = sweep.random(20, 0, space, seed=1), sweep.random(20, 0, space, seed=1)
    assert a == b and a != sweep.random(20, 1, space, seed=1)
    lrs = [p['optim.lr'] for p in a]
    assert all(1e-5 <= x <= 1e-2 for x in lrs) and min(lrs) < 1e-4 < 1e-3 < max(lrs)  # spread in log space
    assert all(p['seed'] == 1 and p['optim.warmup_steps'] in (0, 10) for p in a)
    assert sweep.point_name({'k': 4, 'optim.lr': 1.23456e-4, 'init_from': '{sweep}/x'}) == 'k=4,optim.lr=0.0001235'


def write_point(root, name, axes, metrics):
    os.makedirs(root / name)
    (root / name / 'results.json').write_text(json.dumps(dict(metrics, step=1)))
    return sweep.Point(name, axes, {}, {})


def test_results_table_groups_over_seeds(tmp_path):
    points = [
        write_point(
            tmp_path,
            f'm=a,k={k},seed={s}',
            dict(m='a', k=k, seed=s),
            {'test/accuracy': 0.5 + 0.1 * k + 0.01 * s, 'test/loss': 1.0},
        )
        for k in (1, 2, 4)
        for s in (0, 1, 2)
    ]
    points.append(
        write_point(
            tmp_path,
            'm=probe,k=1',
            dict(m='probe', k=1),
            {'test/probe/accuracy': 0.9, 'test/probe/accuracy_std': 0.05, 'test/probe/seeds': 3},
        )
    )
    points.append(write_point(tmp_path, 'm=zs', dict(m='zs'), {'test/names/accuracy': 0.7}))
    points.append(sweep.Point('m=a,k=8,seed=0', dict(m='a', k=8, seed=0), {}, {}))
    os.makedirs(tmp_path / 'm=a,k=8,seed=0')
    (tmp_path / 'm=a,k=8,seed=0' / 'error.txt').write_text('config.x is wrong\n')
    paths = results.write(str(tmp_path), points, objective='accuracy', split='test', pivot='k')
    md = open(tmp_path / 'results.md').read()
    assert '| a | 4 | test | task | 91.0 ± 1.0 (n=3) | 1 ± 0 (n=3) | ★ |' in md  # 0.9, 0.91, 0.92
    assert '| probe | 1 | test | probe | 90.0 ± 5.0 (n=3) |  |  |' in md  # the evaluator's own seeds
    assert '| zs |  | test | names | 70.0 |  |  |' in md
    assert '- `m=a,k=8,seed=0`: failed — config.x is wrong' in md
    # The pivot: one column per k, rows without k under '—'.
    assert '| m | evaluator | — | k=1 | k=2 | k=4 |' in md
    assert '| a | task |  | 61.0 ± 1.0 (n=3) | 71.0 ± 1.0 (n=3) | 91.0 ± 1.0 (n=3) |' in md
    assert '| zs | names | 70.0 |  |  |  |' in md
    rows = read_csv(tmp_path / 'results.csv')
    assert rows[0][:6] == ['point', 'm', 'k', 'seed', 'status', 'error'] and len(rows) == 13
    assert str(tmp_path / 'plot_k.png') in paths and os.path.getsize(tmp_path / 'plot_k.png') > 10_000


def test_tpe_search_resumes_its_study(tmp_path, monkeypatch):
    pytest.importorskip('optuna')
    calls = []

    def fake_run(command, point_dir):  # a "training run" whose accuracy peaks at lr = 1e-3
        lr = float(next(c for c in command if c.startswith('--config.optim.lr=')).split('=')[1])
        calls.append(lr)
        with open(os.path.join(point_dir, 'results.json'), 'w') as f:
            json.dump({'val/accuracy': 1 - abs(np.log10(lr) + 3) / 10, 'step': 1}, f)
        return True

    monkeypatch.setattr(sweep, 'run_local', fake_run)
    monkeypatch.setattr(sweep, 'check_points', lambda *a: None)
    exp = tmp_path / 'exp.py'
    exp.write_text(
        'from research.sweep import random, loguniform\n'
        'def get_config(arg=""):\n    raise AssertionError\n'
        'def get_sweep(arg=""):\n    return random(4, 0, {"optim.lr": loguniform(1e-5, 1e-1)})\n'
    )
    args = ['--config', str(exp), '--workdir', str(tmp_path / 's'), '--search', 'tpe', '--objective', 'val/accuracy']
    assert sweep.main(args + ['--trials', '3']) == 0
    assert len(calls) == 3 and os.path.exists(tmp_path / 's' / 'optuna.db')
    assert sweep.main(args + ['--trials', '5']) == 0
    assert len(calls) == 5, 'the study resumed: 2 more trials, not 5'
    assert len(read_csv(tmp_path / 's' / 'results.csv')) == 6


def test_failed_point_fails_the_sweep_after_the_rest_ran(bbc, tmp_path, monkeypatch, capsys):
    # Each point a real process (run_local as in a sweep), here a quick script in place of
    # research.main: lr=0.1 dies at run time, lr=0.2 finishes.
    def command(point, config_file, base_arg, workdir):
        if point.args['lr'] == 0.1:
            return [sys.executable, '-c', 'import sys; sys.exit("error: dataset not prepared")']
        results_path = os.path.join(workdir, 'results.json')
        return [sys.executable, '-c', f'open({results_path!r}, "w").write(\'{{"val/accuracy": 0.5, "step": 1}}\')']

    monkeypatch.setattr(sweep.Point, 'command', command)
    monkeypatch.setattr(sweep, '_num_devices', lambda: 8)
    exp, workdir = experiment(tmp_path, bbc, 'product(lr=[0.1, 0.2])'), tmp_path / 's'
    assert sweep.main(['--config', exp, '--workdir', str(workdir)]) == 1
    out, err = capsys.readouterr()
    assert 'lr=0.1: FAILED: dataset not prepared' in out and (workdir / 'lr=0.2' / 'results.json').exists()
    assert err.strip() == (
        f'error: 1 of 2 points failed (each error.txt says why, stderr.txt has its log): {workdir}/lr=0.1/stderr.txt'
    )
    md = (workdir / 'results.md').read_text()
    assert '| 0.2 | val | task | 50.0 |' in md and '`lr=0.1`: failed — dataset not prepared' in md, md
    # --report only reads the table back: its exit status says nothing about the points.
    assert sweep.main(['--config', exp, '--workdir', str(workdir), '--report']) == 0


@pytest.mark.slow  # ~30 s: two real research.main points
def test_sweep_of_real_runs_exits_nonzero_when_a_point_fails(bbc, tmp_path):
    # lr=0.02 passes validation but finds no prepared data when it runs.
    exp = experiment(tmp_path, bbc, "[dict(lr=0.01), {'lr': 0.02, 'data.data_dir': '{sweep}/none'}]")
    workdir = tmp_path / 's'
    done = run_sweep('--config', exp, '--workdir', str(workdir))
    assert done.returncode == 1, done.stderr
    assert (workdir / 'lr=0.01' / 'results.json').exists() and (workdir / 'lr=0.02' / 'error.txt').exists()
    assert done.stderr.startswith('error: 1 of 2 points failed') and f'{workdir}/lr=0.02/stderr.txt' in done.stderr
    assert '`lr=0.02`: failed — ' in (workdir / 'results.md').read_text()
