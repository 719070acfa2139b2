"""Sweeps: python -m research.sweep --config FILE.py[:args] --workdir DIR [--dry_run] [--only REGEX]
[--launcher local|slurm|tpu_vm] [--search tpe --trials N --objective METRIC] [--report]

An experiment file may define `get_sweep(arg)` returning points: dicts whose keys are either
config fields (`optim.lr`, `evals.probe.k`; passed as --config.KEY=VALUE) or arguments of
its `get_config` (`method`, `k`; passed after FILE.py:; a name that is both, like `seed`,
goes to get_config when its parse_arg declares it). Every point runs as an ordinary
`python -m research.main` process in DIR/<point name>/ (e.g. `method=probe,k=16,seed=1`),
one after another in list order (a later point may build on an earlier one: a string value
containing `{sweep}` gets DIR substituted when it runs, and is left out of the name).

- Every point's config is built and validated before the first point runs.
- A finished point (its results.json exists) is skipped, so an interrupted sweep resumes
  where it stopped (a half-trained point resumes from its checkpoint); a failing point is
  recorded (DIR/<point>/error.txt, one line; its log in stderr.txt) and the sweep goes on;
  the sweep then exits with status 1, after writing the table, naming the failed points' logs.
- At the end (or with --report alone) DIR/results.csv, DIR/results.md and plots aggregate
  every point's final metrics (research/results.py). The experiment file may set
  `REPORT = dict(objective='accuracy', split='test', columns=(…), seed_axis='seed', pivot='k')`.
- --search tpe asks optuna's TPE sampler for --trials points from the space of a
  `random(...)` sweep, with the study in DIR/optuna.db (it resumes, and several workers
  may share it), maximising --objective (or minimising with --direction minimize).
"""

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from research import config as config_lib

SWEEP_DIR = '{sweep}'


# --- search spaces -------------------------------------------------------------------------


def product(**axes) -> list:
    """Every combination of the axes' values (the last axis varies fastest)."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def zip_(**axes) -> list:
    """The i-th values of all axes together (all axes must have the same length)."""
    lengths = {len(v) for v in axes.values()}
    if len(lengths) > 1:
        raise ValueError(f'zip_ needs axes of one length, got {dict((k, len(v)) for k, v in axes.items())}')
    return [dict(zip(axes, values)) for values in zip(*axes.values())]


@dataclasses.dataclass(frozen=True)
class Distribution:
    kind: str  # 'loguniform', 'uniform' or 'choice'
    args: tuple

    def sample(self, rng: np.random.Generator):
        """A value, floats rounded to 4 significant digits (so a point's name is its value)."""
        if self.kind == 'choice':
            return self.args[rng.integers(len(self.args))]
        low, high = self.args
        value = np.exp(rng.uniform(np.log(low), np.log(high))) if self.kind == 'loguniform' else rng.uniform(low, high)
        return float(f'{value:.4g}')

    def suggest(self, trial, name: str):
        """The same draw asked of an optuna trial."""
        if self.kind == 'choice':
            return trial.suggest_categorical(name, list(self.args))
        return float(f'{trial.suggest_float(name, *self.args, log=self.kind == "loguniform"):.4g}')


def loguniform(low: float, high: float) -> Distribution:
    if not 0 < low < high:
        raise ValueError(f'loguniform({low}, {high}) needs 0 < low < high')
    return Distribution('loguniform', (low, high))


def uniform(low: float, high: float) -> Distribution:
    if not low < high:
        raise ValueError(f'uniform({low}, {high}) needs low < high')
    return Distribution('uniform', (low, high))


def choice(values) -> Distribution:
    if not values:
        raise ValueError('choice() needs at least one value')
    return Distribution('choice', tuple(values))


class RandomSearch(list):
    """n points drawn from `space` ({key: Distribution}) with `seed`, plus fixed keys; its
    space is kept for adaptive search (--search tpe)."""

    def __init__(self, n: int, seed: int, space: dict, fixed: dict):
        rng = np.random.default_rng(seed)
        super().__init__({**fixed, **{k: d.sample(rng) for k, d in space.items()}} for _ in range(n))
        self.space, self.fixed, self.seed = space, fixed, seed


def random(n: int, seed: int, space: dict, /, **fixed) -> RandomSearch:
    """`n` random points of `space`, e.g. random(8, 0, {'optim.lr': loguniform(1e-5, 1e-3)})."""
    return RandomSearch(n, seed, space, fixed)


# --- points --------------------------------------------------------------------------------


def _format(value) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value).replace(' ', '')


def point_name(point: dict) -> str:
    """`key=value,…` in the point's order, leaving out values that refer to {sweep}."""
    return ','.join(f'{k}={_format(v)}' for k, v in point.items() if SWEEP_DIR not in str(v))


@dataclasses.dataclass
class Point:
    name: str
    axes: dict  # the values its name shows
    args: dict  # get_config arguments
    overrides: dict  # config fields

    def spec(self, config_file: str, base_arg: str) -> str:
        arg = ','.join(filter(None, [base_arg] + [f'{k}={v}' for k, v in self.args.items()]))
        return f'{config_file}:{arg}' if arg else config_file

    def command(self, config_file: str, base_arg: str, workdir: str) -> list:
        return [
            sys.executable,
            '-m',
            'research.main',
            '--config',
            self.spec(config_file, base_arg),
            '--workdir',
            workdir,
        ] + [f'--config.{k}={v!r}' for k, v in self.overrides.items()]


def argument_keys(module, base_arg: str, raw: list) -> set:
    """The point keys that get_config takes as arguments: every key that is no config field,
    and a field's name (e.g. `seed`) that the experiment's parse_arg also declares."""
    keys = {k for values in raw for k in values}
    args = {k for k in keys if '.' not in k and not config_lib.is_field(k)}  # dotted: always a field
    for key in keys - args:
        if '.' in key:
            continue
        value = next(values[key] for values in raw if key in values)
        try:
            module.get_config(','.join(filter(None, [base_arg, f'{key}={value}'])))
        except config_lib.ConfigError as e:
            if f'unknown config argument {key!r}' in str(e):
                continue
        args.add(key)
    return args


def make_points(raw: list, sweep_dir: str, arg_keys: set) -> list:
    """Points from get_sweep's dicts (arg_keys go to get_config), {sweep} filled in."""
    if ',' in sweep_dir:
        raise config_lib.ConfigError(f'--workdir {sweep_dir!r}: a sweep directory may not contain a comma')
    points, names = [], set()
    for values in raw:
        name = point_name(values)
        if not name or name in names:
            raise config_lib.ConfigError(f'sweep point {values} has an empty or repeated name {name!r}')
        names.add(name)
        fill = lambda v: v.replace(SWEEP_DIR, sweep_dir) if isinstance(v, str) else v
        axes = {k: v for k, v in values.items() if SWEEP_DIR not in str(v)}
        points.append(
            Point(
                name,
                axes,
                {k: fill(v) for k, v in values.items() if k in arg_keys},
                {k: fill(v) for k, v in values.items() if k not in arg_keys},
            )
        )
    return points


def load_sweep(config_file: str, arg: str):
    """(get_sweep(arg), its argument keys, the module's REPORT settings) of an experiment file."""
    module = config_lib.load_module(config_file)
    if not hasattr(module, 'get_sweep'):
        raise config_lib.ConfigError(f'{config_file} defines no get_sweep(arg); see research/sweep.py')
    sweep = module.get_sweep(arg)
    return sweep, argument_keys(module, arg, list(sweep)), getattr(module, 'REPORT', {})


def check_points(points: list, config_file: str, base_arg: str, num_devices: int):
    """Builds and validates every point's config (a ConfigError names the point)."""
    for p in points:
        try:
            config = config_lib.load_config(p.spec(config_file, base_arg))
            for key, value in p.overrides.items():
                config_lib.set_value(config, key, value)
            config_lib.validate(config, num_devices)
        except (config_lib.ConfigError, ValueError) as e:
            raise config_lib.ConfigError(f'sweep point {p.name}: {e}') from None


# --- running -------------------------------------------------------------------------------


def status(point_dir: str) -> str:
    if os.path.exists(os.path.join(point_dir, 'results.json')):
        return 'done'
    return 'failed' if os.path.exists(os.path.join(point_dir, 'error.txt')) else 'todo'


class Interrupted(Exception):
    """The sweep was signalled; the running point has stopped (with a checkpoint when it trained)."""


@contextlib.contextmanager
def _forwarding_signals(proc):
    """Passes SIGINT/SIGTERM on to `proc` (a training point stops at its next step with a
    checkpoint; a second signal stops it at once); yields the names of the signals received."""
    received = []

    def forward(signum, frame):
        received.append(signal.Signals(signum).name)
        print(f'{received[-1]}: stopping the running point', file=sys.stderr, flush=True)
        proc.send_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_local(command: list, point_dir: str) -> bool:
    """Runs one point as a process; records its one-line error on failure."""
    error_path = os.path.join(point_dir, 'error.txt')
    if os.path.exists(error_path):
        os.remove(error_path)
    start = time.time()
    # Points mostly compile the same programs (other seeds, learning rates): a persistent JAX
    # compilation cache in the sweep dir spares each later point its compiles (~20 s for a tiny
    # quickstart:runlocal point on 2 CPU cores), unless JAX_COMPILATION_CACHE_DIR names another.
    env = dict(os.environ)
    env.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(os.path.dirname(point_dir), 'jax_cache'))
    env.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
    # Its own session: a terminal's Ctrl-C reaches the sweep only, which passes it on once.
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    with _forwarding_signals(proc) as received:
        _, stderr = proc.communicate()
    with open(os.path.join(point_dir, 'stderr.txt'), 'w') as f:  # warnings and tracebacks, kept
        f.write(stderr)
    if received:
        raise Interrupted(
            f'stopped by {received[0]} in point {os.path.basename(point_dir)} (exit {proc.returncode}); '
            f'rerun the same command to resume the sweep'
        )
    lines = [line for line in stderr.splitlines() if line.strip()]
    if proc.returncode == 0:
        with open(os.path.join(point_dir, 'point.json'), 'r+') as f:
            info = json.load(f)
            info['seconds'] = round(time.time() - start, 1)
            f.seek(0), f.truncate(), json.dump(info, f, indent=1)
        return True
    errors = [line for line in lines if line.startswith('error: ')] or lines[-1:] or [f'exit {proc.returncode}']
    with open(error_path, 'w') as f:
        f.write(errors[-1].removeprefix('error: ') + '\n')
    return False


def launch(point: Point, command: list, point_dir: str, launcher: str, log) -> bool | None:
    """Runs (local) or prints (slurm, tpu_vm) one point; returns success, or None if handed off."""
    os.makedirs(point_dir, exist_ok=True)
    with open(os.path.join(point_dir, 'point.json'), 'w') as f:
        json.dump(
            {'name': point.name, 'args': point.args, 'overrides': point.overrides, 'command': command}, f, indent=1
        )
    args, q = shlex.join(command[3:]), shlex.quote  # research.main's arguments
    if launcher == 'slurm':
        log(f'sbatch --job-name {q(point.name)} --output {q(point_dir)}/slurm-%j.out launch/slurm.sbatch {args}')
        return None
    if launcher == 'tpu_vm':
        log(f'launch/tpu_vm.sh --reuse --name "$TPU_NAME" --zone "$TPU_ZONE" -- {args}')
        return None
    return run_local(command, point_dir)


def run_points(points, config_file, base_arg, sweep_dir, launcher, log):
    for i, p in enumerate(points):
        point_dir = os.path.join(sweep_dir, p.name)
        if status(point_dir) == 'done':
            log(f'[{i + 1}/{len(points)}] {p.name}: done, skipped')
            continue
        log(f'[{i + 1}/{len(points)}] {p.name}: running')
        ok = launch(p, p.command(config_file, base_arg, point_dir), point_dir, launcher, log)
        if ok is False:
            error = open(os.path.join(point_dir, 'error.txt')).read().strip()
            log(f'[{i + 1}/{len(points)}] {p.name}: FAILED: {error}')


def run_tpe(sweep, arg_keys, args, config_file, base_arg, log):
    """Adaptive search: optuna TPE over the random sweep's space, study in DIR/optuna.db."""
    if not isinstance(sweep, RandomSearch):
        raise config_lib.ConfigError('--search tpe needs get_sweep to return random(n, seed, space, ...)')
    if not args.objective:
        raise config_lib.ConfigError('--search tpe needs --objective METRIC (e.g. val/accuracy)')
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(args.workdir, exist_ok=True)
    study = optuna.create_study(
        study_name='sweep',
        storage=f'sqlite:///{os.path.abspath(args.workdir)}/optuna.db',
        load_if_exists=True,
        direction=args.direction,
    )
    # Seeded by how far the study got: a resumed (or second) worker must not replay the
    # first worker's random start-up trials.
    study.sampler = optuna.samplers.TPESampler(seed=sweep.seed + len(study.trials))
    finished = lambda: [t for t in study.trials if t.state.is_finished()]
    while len(finished()) < args.trials:
        trial = study.ask()
        values = {**sweep.fixed, **{k: d.suggest(trial, k) for k, d in sweep.space.items()}}
        trial.set_user_attr('point', values)
        [point] = make_points([values], args.workdir, arg_keys)
        check_points([point], config_file, base_arg, _num_devices())
        point_dir = os.path.join(args.workdir, point.name)
        log(f'[trial {trial.number}] {point.name}')
        if status(point_dir) != 'done':
            launch(point, point.command(config_file, base_arg, point_dir), point_dir, 'local', log)
        results = os.path.join(point_dir, 'results.json')
        value = json.load(open(results)).get(args.objective) if os.path.exists(results) else None
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    unique = {point_name(t.user_attrs['point']): t.user_attrs['point'] for t in finished()}
    return make_points(list(unique.values()), args.workdir, arg_keys)


def _num_devices() -> int:
    """The points' device count, asked of a short-lived process: this one stays alive while
    the points run, and must not hold the accelerator (a TPU opens in one process only)."""
    probe = subprocess.run(
        [sys.executable, '-c', 'import jax; print(jax.device_count())'], capture_output=True, text=True, check=True
    )
    return int(probe.stdout.split()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog='python -m research.sweep', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--config', required=True, help='experiments/FILE.py[:args] defining get_sweep(arg)')
    p.add_argument('--workdir', required=True, help='one subdirectory per point, results.* here')
    p.add_argument('--dry_run', action='store_true', help='print one command per point, run nothing')
    p.add_argument('--only', default='', help='run only points whose name matches this regex')
    p.add_argument(
        '--launcher',
        default='local',
        choices=('local', 'slurm', 'tpu_vm'),
        help='local: run here, one after another; slurm / tpu_vm: print the submit commands',
    )
    p.add_argument('--search', default='', choices=('', 'tpe'), help='adaptive search instead of the list')
    p.add_argument('--trials', type=int, default=8, help='--search: number of trials')
    p.add_argument('--objective', default='', help='metric of results.json to optimise / mark as best')
    p.add_argument('--direction', default='maximize', choices=('maximize', 'minimize'))
    p.add_argument('--report', action='store_true', help='only aggregate the finished points')
    args = p.parse_args(argv)
    log = lambda *a: print(*a, flush=True)
    from research import results

    config_file, _, base_arg = args.config.partition(':')
    try:
        sweep, arg_keys, report = load_sweep(config_file, base_arg)
        points = make_points(sweep, args.workdir, arg_keys)
        if args.only:
            points = [pt for pt in points if re.search(args.only, pt.name)]
            if not points:
                raise config_lib.ConfigError(f'--only {args.only!r} matches no point of {config_file}')
        if not args.report:
            check_points(points, config_file, base_arg, _num_devices())
            if args.dry_run:
                for pt in points:
                    log(shlex.join(pt.command(config_file, base_arg, os.path.join(args.workdir, pt.name))))
                return 0
            if args.search:
                points = run_tpe(sweep, arg_keys, args, config_file, base_arg, log)
            else:
                run_points(points, config_file, base_arg, args.workdir, args.launcher, log)
    except (config_lib.ConfigError, ValueError) as e:  # a bad sweep definition, before any point runs
        print(f'error: {str(e).splitlines()[0]}', file=sys.stderr)
        return 2
    except Interrupted as e:
        log(str(e))
        return 0
    split, objective = report.get('split', ''), report.get('objective', '')
    if args.objective:  # a full metric name: its split and metric
        split, _, objective = results.split_metric(args.objective)
    paths = results.write(
        args.workdir,
        points,
        objective=objective,
        columns=report.get('columns', ()),
        seed_axis=report.get('seed_axis', 'seed'),
        split=split,
        direction=args.direction,
        pivot=report.get('pivot', ''),
    )
    log('wrote ' + ', '.join(paths))
    if args.report or args.launcher != 'local':  # points handed off or run earlier: the table says it all
        return 0
    return report_failures(points, args.workdir)


def report_failures(points: list, sweep_dir: str) -> int:
    """Exit status 1 and one `error:` line naming the failed points' logs, when any failed
    (status 'failed' after this run, so it counts TPE trials and listed points alike); else 0."""
    failed = [os.path.join(sweep_dir, p.name) for p in points if status(os.path.join(sweep_dir, p.name)) == 'failed']
    if not failed:
        return 0
    logs = ', '.join(os.path.join(d, 'stderr.txt') for d in failed[:3]) + (', …' if len(failed) > 3 else '')
    why = 'each error.txt says why, stderr.txt has its log'
    print(f'error: {len(failed)} of {len(points)} points failed ({why}): {logs}', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
