"""The one trainer: pretraining, fine-tuning and evaluation-only runs differ only in the task
and the config.

Flow, for a config that research.config.validate has checked (research.main does, once):
mesh -> task, vocab -> abstract state (jax.eval_shape) -> shardings -> restore (latest
checkpoint in workdir, else config.resume) or jitted sharded init (then config.init_from) ->
training data -> evaluators (config.evals) -> jitted, donated
`train_step(state, batch, rng) -> (state, metrics)` loop with periodic logging, evaluation and
async checkpoints -> final evaluation (results.json), loss curve and samples.
`evaluate(config, workdir)` is the same set-up without training.
"""

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from research import checkpoint, evaluators, flops, plots, sharding, stopping, tasks
from research.evaluators.common import Context
from research.metric_writer import MetricWriter
from research.models import layers
from research.optim import make_optimizer
from research.workdir import check_sources, owned, save_config


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


def make_train_step(task, model, tx, schedule, grad_accum: int):
    """A pure `(state, batch, rng) -> (state, metrics)`; metrics are sums over the batch.

    The loss is the weighted sum over the whole global batch divided by its total weight,
    so splitting the batch into `grad_accum` micro-batches (or over devices) changes
    nothing but float rounding.
    """

    def train_step(state, batch, rng):
        # Each process's stop/save flags, agreed over the whole batch (see stopping.py).
        batch = dict(batch)
        control = jnp.max(batch.pop('control', jnp.zeros((1, len(stopping.FLAGS)), jnp.int32)), axis=0)
        total_weight = jnp.sum(batch['weights'])
        total_weight = jnp.where(total_weight > 0, total_weight, 1.0)

        def loss_fn(params, micro, r):
            loss_sum, sums = task.loss(model, params, micro, r, train=True)
            return loss_sum / total_weight, sums

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def micro_step(i, mb):  # float32 gradients and the metric sums of micro-batch i
            (_, sums), g = grad_fn(state.params, mb, jax.random.fold_in(rng, i))
            return jax.tree.map(lambda x: x.astype(jnp.float32), g), sums

        # Strided micro-batches (rows i, i+k, …) keep every micro-batch spread over all
        # data shards instead of living on a few devices. Micro-batch i draws its dropout
        # from fold_in(rng, i) whatever grad_accum is, and gradients add up in float32.
        # The first one starts the sums, so grad_accum=1 traces and compiles no loop.
        micro = jax.tree.map(lambda x: x.reshape(-1, grad_accum, *x.shape[1:]).swapaxes(0, 1), batch)
        grads, sums = micro_step(0, jax.tree.map(lambda x: x[0], micro))
        if grad_accum > 1:
            add = lambda carry, inputs: (jax.tree.map(jnp.add, carry, micro_step(*inputs)), None)
            rest = jax.tree.map(lambda x: x[1:], micro)
            (grads, sums), _ = jax.lax.scan(add, (grads, sums), (jnp.arange(1, grad_accum), rest))
        grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(sums, grad_norm=optax.global_norm(grads), lr=schedule(state.step), control=control)
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def jit_train_step(task, model, tx, schedule, config, mesh, abstract):
    """The train step jitted with state/batch shardings on `mesh` and donated state."""
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    return jax.jit(
        make_train_step(task, model, tx, schedule, config.grad_accum),
        in_shardings=(state_sh, sharding.batch_sharding(mesh), sharding.replicated(mesh)),
        out_shardings=(state_sh, sharding.replicated(mesh)),
        donate_argnums=0,
    )


def init_state(task, config, vocab_size: int, mesh):
    """(model, tx, schedule, abstract state with shardings, jitted sharded init fn)."""
    model = task.build_model(vocab_size)
    tx, schedule = make_optimizer(config.optim, max(config.total_steps, 1), config.model.num_layers)

    def init(rng):
        params = model.init({'params': rng}, *task.dummy_inputs(), train=False)['params']
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))

    boxed = jax.eval_shape(init, jax.random.key(0))
    shardings = sharding.logical_shardings(boxed, mesh, config.mesh.rules)
    # `shardings` is a prefix of the state: it has a leaf where the state has an empty node
    # (optax.MaskedNode for frozen params), which is kept as is.
    abstract = jax.tree.map(
        lambda s, a: a if isinstance(a, optax.MaskedNode) else jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        shardings,
        nn.unbox(boxed),
    )
    init_fn = jax.jit(lambda r: nn.unbox(init(r)), out_shardings=jax.tree.map(lambda a: a.sharding, abstract))
    return model, tx, schedule, abstract, init_fn


def _checkpoint_dir(path: str) -> str:
    """A workdir's checkpoints/ (or `path` itself when it is a checkpoint dir)."""
    return os.path.join(path, 'checkpoints') if os.path.isdir(os.path.join(path, 'checkpoints')) else path


def _restore(config, workdir, abstract):
    """Resume order: latest readable checkpoint in workdir, then config.resume, else None."""
    mngr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), config.keep_checkpoints)
    try:
        restored = checkpoint.restore_latest(mngr, abstract)
        if restored is None and config.resume:
            source = checkpoint.manager(_checkpoint_dir(config.resume), config.keep_checkpoints)
            try:
                restored = checkpoint.restore_latest(source, abstract)
            finally:
                source.close()
            if restored is None:
                raise FileNotFoundError(f'config.resume={config.resume!r} holds no checkpoint')
    except BaseException:
        mngr.close()  # an open manager's threads would print tracebacks at exit
        raise
    return mngr, restored


def _init_from(config, task, state, abstract, tx, log):
    """A fresh state whose params come from config.init_from where path and shape match."""
    if config.init_from.startswith('hf:'):
        loaded = task.load_hf(config.init_from[3:])
    else:
        loaded = checkpoint.load_params(_checkpoint_dir(config.init_from))[1]
    # Scanned and unrolled blocks hold the same numbers: take them in this model's layout.
    loaded = (layers.scan_params if config.model.scan_layers else layers.unscan_params)(loaded)
    params, report = checkpoint.merge_params(jax.device_get(state.params), loaded)
    mismatched = report['mismatched']
    if not report['loaded']:
        raise ValueError(
            f'config.init_from={config.init_from!r} shares no parameter (path and shape) with this model: '
            + (
                f'{len(mismatched)} differ in shape, e.g. {"; ".join(mismatched[:2])}; use the model config it was '
                f'trained with'
                if mismatched
                else f'no path in common, e.g. it has {report["unused"][:3]}'
            )
        )
    log(
        f'init_from {config.init_from}: {len(report["loaded"])} tensors loaded, '
        f'{len(report["new"])} new ({", ".join(report["new"][:4])}{", …" if len(report["new"]) > 4 else ""}), '
        f'{len(report["unused"])} unused'
        + (f'; re-initialised for a shape mismatch: {"; ".join(mismatched[:3])}' if mismatched else '')
    )
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    return jax.jit(lambda p: TrainState(jnp.zeros((), jnp.int32), p, tx.init(p)), out_shardings=state_sh)(params)


class _StepLog:
    """Collects per-step device metrics; on flush checks them and writes aggregates."""

    def __init__(self, task, writer, flops_per_token: float, peak: float):
        self.task, self.writer = task, writer
        self.flops_per_token, self.peak = flops_per_token, peak
        self.pending, self.tokens, self.t0 = [], 0, None

    def add(self, step, metrics, tokens: int):
        """`tokens`: the step's global batch positions (rows x length, padding included)."""
        self.pending.append((step, metrics))
        self.tokens += tokens
        if self.t0 is None:  # exclude compilation: time from the end of the first step
            jax.block_until_ready(metrics)
            self.restart_clock()

    def restart_clock(self):
        self.tokens, self.t0 = 0, time.perf_counter()

    def flush(self, step, extra: dict, last_checkpoint):
        """Raises FloatingPointError at the first non-finite loss or gradient."""
        if not self.pending:
            return None
        fetched = jax.device_get([m for _, m in self.pending])
        for (s, _), m in zip(self.pending, fetched):
            if not (math.isfinite(float(m['loss'])) and math.isfinite(float(m['grad_norm']))):
                raise FloatingPointError(
                    f'non-finite train loss {float(m["loss"])} / grad norm {float(m["grad_norm"])} '
                    f'at step {s}; last good checkpoint: {last_checkpoint()}'
                )
        sums = {
            k: sum(np.asarray(m[k], np.float64) for m in fetched)
            for k in fetched[0]
            if k not in ('grad_norm', 'lr', 'control')
        }
        metrics = {f'train/{k}': v for k, v in self.task.summarize(sums).items()}
        metrics.update({'train/grad_norm': float(fetched[-1]['grad_norm']), 'train/lr': float(fetched[-1]['lr'])})
        if self.t0 is not None and self.tokens:
            dt = time.perf_counter() - self.t0
            metrics['train/tokens_per_sec'] = self.tokens / dt
            metrics['train/mfu'] = self.tokens * self.flops_per_token / dt / self.peak
        metrics.update(extra)
        self.writer.write(step, metrics)
        self.pending = []
        self.restart_clock()
        return metrics


class _Profile:
    """A jax.profiler trace of `steps` train steps, from the end of this process's first (compiled)
    step; TensorBoard's profile plugin or Perfetto (the .trace.json.gz) opens it."""

    def __init__(self, steps: int, start: int, directory: str, log):
        self.first, self.last = (start + 1, start + 1 + steps) if steps else (None, None)
        self.directory, self.log, self.on = directory, log, False

    def after(self, step, state):
        """Call after dispatching `step` (None: the loop ended)."""
        if step is not None and step == self.first:
            jax.block_until_ready(state)
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self.on = True
        elif self.on and (step is None or step == self.last):
            jax.block_until_ready(state)
            jax.profiler.stop_trace()
            self.on = False
            self.log(f'profile of steps {self.first + 1}..{step or "end"} written to {self.directory}')


@dataclasses.dataclass
class Run:
    """The parts of one run that the loop and the evaluations share (built by `setup`)."""

    config: Any
    task: Any
    vocab: Any
    model: Any
    tx: Any
    schedule: Any
    abstract: Any  # the TrainState's shapes and shardings
    workdir: str
    mesh: Any
    mngr: Any
    writer: MetricWriter
    evaluators: list
    log: Callable
    rng: Any  # per-step dropout keys are fold_in(rng, step)
    history: dict = dataclasses.field(default_factory=dict)  # metric -> values, in this process

    def evaluate(self, params, step: int, due=lambda ev: True) -> dict:
        """Runs the evaluators for which due(ev) holds; writes and returns their metrics."""
        out = {}
        for ev in self.evaluators:
            if due(ev):
                t = time.perf_counter()
                metrics = ev.run(params)
                self.writer.write(step, metrics)
                self.log(
                    f'step {step} {ev.name} ({time.perf_counter() - t:.1f} s): '
                    + ', '.join(f'{k} {v:.4g}' for k, v in metrics.items())
                )
                out.update(metrics)
        for k, v in out.items():
            self.history.setdefault(k, []).append(v)
        return out

    def close(self):
        """Waits for the last checkpoint to commit; closes the checkpoint manager and metric files."""
        self.mngr.wait_until_finished()
        self.mngr.close()
        self.writer.close()

    def last_checkpoint(self) -> str:
        self.mngr.wait_until_finished()
        last = self.mngr.latest_step()
        return 'none' if last is None else f'step {last} in {self.mngr.directory}'

    def headline(self) -> str:
        """Name of the task evaluator's headline metric (plots and the run summary follow it)."""
        task_evals = [ev for ev in self.evaluators if not ev.named]
        return task_evals[0].prefix + self.task.headline if task_evals else ''

    def train(self, state, start: int, data, stop: stopping.Stop):
        """Steps from `start` to config.total_steps, evaluating and checkpointing on the way;
        after a signal, saves the step it stopped at and raises stopping.Stopped."""
        config = self.config
        if config.optim.warmup_steps >= config.total_steps:
            self.log(
                f'warning: config.optim.warmup_steps={config.optim.warmup_steps} >= config.total_steps='
                f'{config.total_steps}: the learning rate warms up over {max(config.total_steps - 1, 0)} steps instead '
                f'and reaches its peak only at the end; lower warmup_steps'
            )
        peak = (config.peak_flops or flops.measure_matmul_peak()) * jax.device_count()
        steps = _StepLog(self.task, self.writer, self.task.flops_per_token(state.params), peak)
        train_step = jit_train_step(self.task, self.model, self.tx, self.schedule, config, self.mesh, self.abstract)
        bar = tqdm.tqdm(
            total=config.total_steps,
            initial=start,
            desc='train',
            dynamic_ncols=True,
            disable=not (jax.process_index() == 0 and config.progress_bar),
        )
        step, control, saved_at, stop_now = start, None, start, False
        rows = config.batch_size // jax.process_count()
        profile = _Profile(config.profile_steps, start, os.path.join(self.workdir, 'profile'), self.log)
        while step < config.total_steps:
            batch = dict(next(data), control=stop.control(rows))
            length = batch['inputs'].shape[1] if 'inputs' in batch else config.data.seq_len  # may vary (buckets)
            batch = sharding.global_batch(batch, self.mesh)
            # Traced with the mesh and logical rules in scope (activation constraints); init
            # and end-of-run sampling stay outside (see docs/design.md).
            with sharding.context(self.mesh, config.mesh.rules):
                state, metrics = train_step(state, batch, jax.random.fold_in(self.rng, step))
            step += 1
            steps.add(step, metrics, config.batch_size * length)
            profile.after(step, state)
            bar.update(1)
            last = step == config.total_steps
            # The previous step's agreed flags: this step is in flight while we wait for them.
            flags = stopping.decide(control) if control is not None else dict(stop=False, save=False)
            control = metrics['control']
            stop_now = flags['stop']
            due = [ev for ev in self.evaluators if ev.every and step % ev.every == 0 and not (last or stop_now)]
            clock = flags['save'] and saved_at < step - 1  # else the batch asking for it predates the last save
            save_now = step % config.checkpoint_every == 0 or last or stop_now or clock
            # Flush before evaluating or saving: never evaluate or checkpoint a non-finite state.
            if step % config.log_every == 0 or last or due or save_now:
                extra = {f'data/train_{k}': v for k, v in data.stats.items()}
                logged = steps.flush(step, extra, self.last_checkpoint)
                if logged:
                    bar.set_postfix(loss=f'{logged["train/loss"]:.3f}', refresh=False)
            if due:
                self.evaluate(state.params, step, due.__contains__)
            if save_now:
                checkpoint.save(self.mngr, step, state, dict(data.state))
                stop.saved()
                saved_at = step
            if stop_now:
                break
            if due or save_now:
                steps.restart_clock()
        bar.close()
        profile.after(None, state)
        if stop_now:  # the caller's Run.close() waits for the commit before this is reported
            raise stopping.Stopped(
                stop.received or 'a signal to another process', step, f'{self.mngr.directory}/{step}'
            )
        return state, step


def setup(config, workdir: str, log=print, train: bool = True):
    """(run, state, start step, training data or None) for a validated config: everything
    training and evaluation share. The state comes from the workdir's latest checkpoint,
    config.resume, or a fresh init (then config.init_from). Training data (when `train` and
    steps remain) and evaluators are built before anything compiles: a missing dataset or a
    k larger than a class fails in seconds."""
    check_sources(config)
    mesh = sharding.make_mesh(config.mesh)
    task = tasks.get(config)
    vocab = task.load_vocab()
    model, tx, schedule, abstract, init_fn = init_state(task, config, len(vocab), mesh)
    mngr, restored = _restore(config, workdir, abstract)
    start, state, data_state = restored or (0, None, None)
    if restored:
        position = {k: v for k, v in data_state.items() if k != 'rows'}  # per-row cursors: too long to print
        log(f'resumed from step {start} (data position {position})')
    init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
    if config.dropout_rng != 'threefry2x32':  # same seed, another generator for the dropout masks
        train_rng = jax.random.key(jax.random.bits(train_rng, dtype=jnp.uint32), impl=config.dropout_rng)
    ctx = Context(config, task, vocab, model, mesh, jax.tree.map(lambda a: a.sharding, abstract.params), workdir, log)
    data = None
    if train and start < config.total_steps:
        data = task.train_data(vocab, sharding.local_rows(config.batch_size), data_state)
    run = Run(
        config,
        task,
        vocab,
        model,
        tx,
        schedule,
        abstract,
        workdir,
        mesh,
        mngr,
        MetricWriter(workdir),
        evaluators.build(ctx),
        log,
        train_rng,
    )
    if state is None:
        state = init_fn(init_rng)
        if config.init_from:
            state = _init_from(config, task, state, abstract, tx, log)
    return run, state, start, data


def _finish(run: Run, step: int, final: dict) -> dict:
    """results.json (this run's final metrics, replacing an older file: nothing stale is
    left under a new step) and the loss curve; returns `final`."""
    run.mngr.wait_until_finished()
    if jax.process_index() == 0:
        path = os.path.join(run.workdir, 'results.json')
        with open(path + '.tmp', 'w') as f:
            json.dump({**final, 'step': step}, f, indent=1, sort_keys=True)
        os.replace(path + '.tmp', path)
        headline = run.headline()
        baseline = f'{headline.rpartition("/")[0]}/{run.task.baseline}' if headline and run.task.baseline else ''
        plots.training_curves(run.workdir, os.path.join(run.workdir, 'loss_curve.png'), headline, baseline)
        seen = run.history.get(headline, [])
        if len(seen) > 1:
            run.log(
                f'{headline} {seen[0]:.4g} at the first evaluation -> {seen[-1]:.4g} at step {step}'
                + (f'; baseline {baseline} {final[baseline]:.4g}' if baseline in final else '')
            )
    return final


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains per `config` (total_steps 0: evaluates only), writing checkpoints, metrics,
    results.json and plots to `workdir`. Returns the final evaluation metrics.

    A fresh run evaluates at step 0 (evaluators with every > 0) and every evaluator at the
    end; a finished run resumed only re-evaluates (e.g. with another data.eval_split).
    SIGTERM or SIGINT stops training with a checkpoint (stopping.Stopped). config.json is
    written once the workdir's checkpoint fits the config: a refused config changes nothing.
    """
    is_main = jax.process_index() == 0
    log = tqdm.tqdm.write if is_main else (lambda *_: None)
    with owned(workdir, log), stopping.Stop(config.checkpoint_minutes) as stop:
        run, state, start, data = setup(config, workdir, log)
        if is_main:
            save_config(config, workdir)
        step = start
        try:
            if start < config.total_steps:
                if start == 0:
                    run.evaluate(state.params, 0, lambda ev: ev.every > 0)
                state, step = run.train(state, start, data, stop)
            final = run.evaluate(state.params, step)
            if start < config.total_steps:
                rng = jax.random.fold_in(run.rng, step)  # a key no train step uses
                run.task.write_outputs(state.params, run.vocab, workdir, rng)
            return _finish(run, step, final)
        finally:
            run.close()


def evaluate(config, workdir: str) -> dict:
    """Runs every evaluator once on the workdir's newest checkpoint or, with none, on the
    config.init_from model; metrics go to the workdir like a training run's."""
    log = tqdm.tqdm.write if jax.process_index() == 0 else (lambda *_: None)
    checkpoints = os.path.join(workdir, 'checkpoints')
    if not (os.path.isdir(checkpoints) and os.listdir(checkpoints) or config.init_from or config.resume):
        raise FileNotFoundError(f'nothing to evaluate: {workdir} has no checkpoint and config.init_from is empty')
    with owned(workdir, log):
        run, state, step, _ = setup(config, workdir, log, train=False)
        try:
            return _finish(run, step, run.evaluate(state.params, step))
        finally:
            run.close()
