"""Nothing lost, whatever happens: signals, kills, a second run on the same workdir, bad input.

Runs that must be signalled or killed are real `python -m research.main` processes.
"""

import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import tiny_lm_config, tiny_lm_experiment

from research import checkpoint, generate, workdir
from research import main as main_lib
from research.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Long enough that a signal sent once training logs its first steps lands mid-training.
LONG = dict(total_steps=400, log_every=5, checkpoint_every=1000, eval_every=0, optim__warmup_steps=10)


def params_at(run_dir, step):
    return checkpoint.load_params(os.path.join(run_dir, 'checkpoints'), step)[1]


def assert_same_params(a_dir, b_dir, step):
    jax.tree.map(np.testing.assert_array_equal, params_at(a_dir, step), params_at(b_dir, step))


def start(config_file, run_dir):
    return subprocess.Popen(
        [sys.executable, '-m', 'research.main', '--config', config_file, '--workdir', run_dir],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a SIGINT ignored by whatever started pytest stays ignored in the run.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, proc, timeout=300, every=0.02):
    end = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f'the run ended early: {proc.communicate()}'
        assert time.time() < end, 'timed out'
        time.sleep(every)


def trained_steps(run_dir) -> int:
    """The last step metrics.jsonl logged train metrics for (0 before any)."""
    try:
        with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
            return max([json.loads(line)['step'] for line in f if 'train/loss' in line], default=0)
    except FileNotFoundError:
        return 0


def files(directory) -> dict:
    """{relative path: md5} of every file under `directory`."""
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            out[os.path.relpath(path, directory)] = hashlib.md5(open(path, 'rb').read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def reference(bbc, tmp_path_factory):
    """The uninterrupted run that signalled and killed runs must end equal to."""
    run_dir = str(tmp_path_factory.mktemp('reference') / 'run')
    train_and_evaluate(tiny_lm_config(bbc, **LONG), run_dir)
    return run_dir


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_that_step_and_the_restart_ends_bitwise_equal(bbc, tmp_path, reference, sig):
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', **LONG)
    run_dir = str(tmp_path / 'run')
    proc = start(config_file, run_dir)
    wait_for(lambda: trained_steps(run_dir) > 0, proc)
    sent = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    took = time.time() - sent
    name = sig.name
    assert proc.returncode == 0, err
    assert took < 20, f'{name} took {took:.1f} s to stop'  # mostly the first save's compiles (orbax slices replicas)
    assert 'Traceback' not in err, err
    assert f'{name}: stopping after this step with a checkpoint' in err
    m = re.search(rf'stopped by {name} at step (\d+): checkpoint saved in (\S+); run the same command to resume', out)
    assert m, out
    step = int(m.group(1))
    assert 0 < step < LONG['total_steps']
    assert m.group(2) == os.path.join(run_dir, 'checkpoints', str(step))
    assert os.listdir(os.path.join(run_dir, 'checkpoints')) == [str(step)], 'the step is committed, nothing else'
    assert not os.path.exists(os.path.join(run_dir, 'results.json')), 'an unfinished run has no results'
    assert not os.path.exists(os.path.join(run_dir, 'lock.json'))

    restart = start(config_file, run_dir)
    out, err = restart.communicate(timeout=300)
    assert restart.returncode == 0, err
    assert f'resumed from step {step}' in out
    assert_same_params(run_dir, reference, LONG['total_steps'])


def test_second_run_on_a_locked_workdir_refuses_and_changes_nothing(bbc, tmp_path, capfd):
    run_dir = str(tmp_path / 'run')
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', total_steps=3)
    assert main_lib.main(['--config', config_file, '--workdir', run_dir]) == 0
    holder = workdir.Lock(run_dir)  # another live run (this process, another token)
    holder.acquire(print)
    before = files(run_dir)
    capfd.readouterr()
    assert main_lib.main(['--config', config_file, '--workdir', run_dir, '--config.total_steps=6']) == 2
    err = capfd.readouterr().err.strip()
    assert re.fullmatch(
        rf'error: workdir {re.escape(run_dir)} is in use by the run of pid {os.getpid()} on host '
        rf'{re.escape(socket.gethostname())} \(started [-\d: ]+\); wait for it or stop it, or if that run is gone, '
        rf'delete {re.escape(run_dir)}/lock.json and rerun',
        err,
    ), err
    assert files(run_dir) == before
    holder.release()
    assert not os.path.exists(os.path.join(run_dir, 'lock.json'))


def test_stale_locks_are_reported_and_taken_over(tmp_path):
    gone = subprocess.Popen(['true'])
    gone.wait()  # a pid that no longer runs
    host = socket.gethostname()
    cases = [
        (dict(host=host, pid=gone.pid, heartbeat=time.time()), 'its process is gone'),
        (dict(host='elsewhere', pid=1, heartbeat=time.time() - 2 * workdir.STALE_SECONDS), 'no heartbeat for'),
        (None, 'it is unreadable'),
    ]
    for owner, reason in cases:
        path = tmp_path / 'lock.json'
        path.write_text(json.dumps(dict(owner, started=0, token='old')) if owner else '{"host": ')
        logged = []
        lock = workdir.Lock(str(tmp_path))
        lock.acquire(logged.append)
        assert len(logged) == 1 and logged[0].startswith('taking over the lock of') and reason in logged[0]
        assert json.loads(path.read_text())['pid'] == os.getpid()
        lock.release()
        assert not path.exists()
    alive = dict(host='elsewhere', pid=1, heartbeat=time.time(), started=0, token='old')
    (tmp_path / 'lock.json').write_text(json.dumps(alive))
    with pytest.raises(workdir.WorkdirError, match='is in use by the run of pid 1 on host elsewhere'):
        workdir.Lock(str(tmp_path)).acquire(print)


def test_the_heartbeat_keeps_a_lock_fresh(tmp_path):
    lock = workdir.Lock(str(tmp_path), heartbeat=0.05)
    lock.acquire(print)
    first = json.loads((tmp_path / 'lock.json').read_text())['heartbeat']
    time.sleep(0.5)
    assert json.loads((tmp_path / 'lock.json').read_text())['heartbeat'] > first
    lock.release()


def test_refused_config_change_keeps_config_json_and_generate_works(bbc, tmp_path, capfd):
    run_dir = str(tmp_path / 'run')
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', total_steps=3)
    assert main_lib.main(['--config', config_file, '--workdir', run_dir]) == 0
    config_json = open(os.path.join(run_dir, 'config.json'), 'rb').read()
    capfd.readouterr()
    argv = ['--config', config_file, '--workdir', run_dir, '--config.total_steps=6', '--config.model.d_model=64']
    assert main_lib.main(argv) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: the checkpoints in '), err
    assert re.search(
        r'hold another model or optimizer \(\S+: \([\d, ]+\) there vs \([\d, ]+\) in this config\)', err[0]
    )
    assert open(os.path.join(run_dir, 'config.json'), 'rb').read() == config_json
    assert generate.main(['--workdir', run_dir, '--prompt', 'the government', '--max_new_tokens', '3']) == 0
    # An accepted change (more steps) keeps the earlier config beside the new one.
    assert main_lib.main(argv[:-1]) == 0
    assert open(os.path.join(run_dir, 'config.1.json'), 'rb').read() == config_json
    assert json.load(open(os.path.join(run_dir, 'config.json')))['total_steps'] == 6


@pytest.fixture(scope='module')
def trained(bbc, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp('trained') / 'run')
    train_and_evaluate(tiny_lm_config(bbc, total_steps=2), run_dir)
    return run_dir


def bad_inputs(tmp_path, trained):
    """(argv after --config FILE --workdir DIR, expected one-line error) for research.main."""
    syntax = tmp_path / 'syntax.py'
    syntax.write_text('from research.config import base_config\n\ndef get_config(arg):\n    c = base_config(\n')
    return {
        'batch_size_0': ([], ['--config.batch_size=0'], r'config\.batch_size=0 must be >= 1'),
        'syntax_error': (
            ['--config', str(syntax)],
            [],
            re.escape(f"{syntax}:4: '(' was never closed; fix the experiment file"),
        ),
        'size_without_value': (
            ['--config', 'experiments/quickstart.py:size'],
            [],
            r"config argument 'size' needs a value \(size=…\); default 'tiny'",
        ),
        'unknown_dataset': (
            [],
            ['--config.data.name=bbc_newz'],
            r"no dataset 'bbc_newz' \(config\.data\.name\) .* did you mean 'bbc_news'",
        ),
        'missing_init_from': (
            [],
            ['--config.init_from=/nonexistent/run'],
            r"config\.init_from='/nonexistent/run': /nonexistent/run does not exist",
        ),
        'init_from_shapes': (
            [],
            [f'--config.init_from={trained}', '--config.model.d_model=64', '--config.model.mlp_dim=128'],
            r"config\.init_from='\S+' shares no parameter \(path and shape\) with this model: "
            r'\d+ differ in shape, e\.g\. \S+ \([\d, ]+\) there vs \([\d, ]+\) here',
        ),
    }


@pytest.mark.parametrize(
    'case',
    ['batch_size_0', 'syntax_error', 'size_without_value', 'unknown_dataset', 'missing_init_from', 'init_from_shapes'],
)
def test_bad_input_is_one_error_line_and_writes_nothing(bbc, tmp_path, trained, capfd, case):
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py')
    config, overrides, expected = bad_inputs(tmp_path, trained)[case]
    run_dir = str(tmp_path / 'run')
    capfd.readouterr()
    assert main_lib.main(['--config', config_file, '--workdir', run_dir] + config + overrides) == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r'error: ' + expected + r'.*', lines[0]), err
    assert not os.path.exists(run_dir), os.listdir(run_dir)


def test_unusable_workdirs_are_one_error_line(bbc, tmp_path, capfd):
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py')
    a_file = tmp_path / 'a_file'
    a_file.write_text('keep me')
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o500)
    unwritable = str(read_only / 'run') if os.geteuid() != 0 else '/proc/wordlab_run'  # root writes anywhere else
    for run_dir, expected in (
        (str(a_file), f'--workdir {a_file} is a file, not a directory; pass a directory'),
        (str(a_file / 'run'), f'--workdir {a_file}/run cannot be written (Not a directory)'),
        (unwritable, f'--workdir {unwritable} cannot be written ('),
    ):
        capfd.readouterr()
        assert main_lib.main(['--config', config_file, '--workdir', run_dir]) == 2
        lines = capfd.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: ' + expected), lines
    assert a_file.read_text() == 'keep me' and not os.listdir(read_only)


def test_the_cli_prints_nothing_but_the_error(bbc, tmp_path):
    """A new process (TF and JAX start-up included) writes exactly one line on stderr."""
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', data__name='bbc_newz')
    proc = subprocess.run(
        [sys.executable, '-m', 'research.main', '--config', config_file, '--workdir', str(tmp_path / 'run')],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no dataset 'bbc_newz'") and proc.stderr.count('\n') == 1, proc.stderr


def test_a_prompt_longer_than_the_context(trained, capfd):
    prompt = ' '.join(['the'] * 70)  # max_len 64
    capfd.readouterr()
    assert generate.main(['--workdir', trained, '--prompt', prompt, '--max_new_tokens', '4']) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert lines == [
        'error: a prompt of 71 tokens + --max_new_tokens 4 exceeds the context of 64 tokens (model.max_len); '
        'shorten it, or pass --keep_last to keep its last 60 tokens'
    ]
    assert generate.main(['--workdir', trained, '--prompt', prompt, '--max_new_tokens', '4', '--keep_last']) == 0
    assert capfd.readouterr().out.splitlines()[1].startswith(prompt + ' ⟶')


def test_warmup_longer_than_training_is_warned(bbc, tmp_path, capfd):
    train_and_evaluate(tiny_lm_config(bbc, total_steps=3, optim__warmup_steps=10), str(tmp_path / 'run'))
    assert (
        'warning: config.optim.warmup_steps=10 >= config.total_steps=3: the learning rate warms up over 2 steps '
        'instead and reaches its peak only at the end; lower warmup_steps' in capfd.readouterr().out
    )


def test_checkpoint_minutes_saves_on_a_clock(bbc, tmp_path):
    for minutes, saved in ((0.0, ['6']), (1e-9, ['2', '4', '6'])):  # 1e-9: due at every step's check
        run_dir = str(tmp_path / f'{minutes}')
        config = tiny_lm_config(bbc, checkpoint_every=1000, keep_checkpoints=10, checkpoint_minutes=minutes)
        train_and_evaluate(config, run_dir)
        assert sorted(os.listdir(os.path.join(run_dir, 'checkpoints')), key=int) == saved


@pytest.mark.slow
def test_repeated_kill_9_ends_bitwise_equal(bbc, tmp_path, reference):
    """kill -9 at random moments, one of them during an async save; each restart resumes."""
    settings = dict(LONG, checkpoint_every=20)
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', **settings)
    run_dir = str(tmp_path / 'run')
    checkpoints = os.path.join(run_dir, 'checkpoints')
    rng = random.Random(0)
    saving_kills, resumed_from = 0, []
    for kill in range(6):
        proc = start(config_file, run_dir)
        if kill == 2:  # during an async save: the moment a step's temporary directory exists
            saving = lambda: os.path.isdir(checkpoints) and any('tmp' in d for d in os.listdir(checkpoints))
            wait_for(saving, proc, every=0.001)
            saving_kills += 1
        else:  # after a random number of further training steps
            target = trained_steps(run_dir) + rng.randint(5, 60)
            wait_for(lambda target=target: trained_steps(run_dir) >= target, proc)
        proc.kill()
        out, _ = proc.communicate()
        resumed = re.search(r'resumed from step (\d+)', out)
        resumed_from.append(int(resumed.group(1)) if resumed else 0)
    proc = start(config_file, run_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert saving_kills == 1 and len(set(resumed_from)) >= 3, resumed_from  # it made progress between kills
    assert_same_params(run_dir, reference, LONG['total_steps'])


@pytest.mark.slow
def test_processes_agree_on_the_step_when_one_is_signalled(bbc, tmp_path):
    """Two jax.distributed processes; SIGTERM to process 1 only: both stop at one step with
    one committed checkpoint (tests/test_multihost.py resumes such checkpoints on 2 processes)."""
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', **LONG)
    run_dir = str(tmp_path / 'run')
    env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4', JAX_PLATFORMS='cpu')

    def pair(name):
        """Both processes, their output in files (gloo's chatter would fill a pipe and block one)."""
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        command = [sys.executable, '-m', 'research.main', '--config', config_file, '--workdir', run_dir]
        return [
            subprocess.Popen(
                command + ['--coordinator', f'127.0.0.1:{port}', '--num_processes', '2', '--process_id', str(i)],
                cwd=ROOT,
                env=env,
                stdout=open(tmp_path / f'{name}{i}.out', 'w'),
                stderr=subprocess.STDOUT,
            )
            for i in range(2)
        ]

    def finish(processes, name):
        assert [p.wait(timeout=300) for p in processes] == [0, 0], (tmp_path / f'{name}1.out').read_text()[-3000:]
        return (tmp_path / f'{name}0.out').read_text(), (tmp_path / f'{name}1.out').read_text()

    first = pair('first')
    wait_for(lambda: trained_steps(run_dir) > 0, first[0])
    first[1].send_signal(signal.SIGTERM)
    out0, out1 = finish(first, 'first')
    assert 'SIGTERM: stopping after this step' in out1 and 'SIGTERM' not in out0
    m = re.search(r'stopped by a signal to another process at step (\d+)', out0)
    assert m, out0
    step = int(m.group(1))
    assert os.listdir(os.path.join(run_dir, 'checkpoints')) == [str(step)] and step < LONG['total_steps']
    assert checkpoint.load_params(os.path.join(run_dir, 'checkpoints'))[0] == step, 'committed and readable'


@pytest.mark.slow
def test_a_signalled_sweep_stops_its_point_with_a_checkpoint_and_resumes(bbc, tmp_path):
    config_file = tiny_lm_experiment(bbc, tmp_path / 'exp.py', **LONG)
    with open(config_file, 'a') as f:
        f.write("\n\ndef get_sweep(arg=''):\n    return [dict(seed=0)]\n")
    sweep_dir = str(tmp_path / 'sweep')
    point_dir = os.path.join(sweep_dir, 'seed=0')
    command = [sys.executable, '-m', 'research.sweep', '--config', config_file, '--workdir', sweep_dir]
    kwargs = dict(cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep = subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)
    wait_for(lambda: trained_steps(point_dir) > 0, sweep)
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 0, err
    assert 'stopped by SIGINT in point seed=0 (exit 0); rerun the same command to resume the sweep' in out, out
    [step] = os.listdir(os.path.join(point_dir, 'checkpoints'))
    assert not os.path.exists(os.path.join(point_dir, 'results.json'))
    again = subprocess.run(command, timeout=300, **kwargs)
    assert again.returncode == 0, again.stderr
    assert json.load(open(os.path.join(point_dir, 'results.json')))['step'] == LONG['total_steps']
    assert f'resumed from step {step}' in open(os.path.join(point_dir, 'stderr.txt')).read() + again.stdout
