"""The one trainer: pretraining and fine-tuning differ only in the task and the config.

Flow: validate config -> mesh -> data -> abstract state (jax.eval_shape) -> shardings ->
restore (latest checkpoint in workdir, else config.resume) or jitted sharded init ->
jitted, donated `train_step(state, batch, rng) -> (state, metrics)` loop with periodic
logging, evaluation and async checkpoints -> final evaluation, plot and samples.
"""

import math
import os
import time
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from research import checkpoint, config as config_lib, flops, plots, sharding, tasks
from research.metric_writer import MetricWriter, read_metrics
from research.optim import make_optimizer


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
        total_weight = jnp.sum(batch['weights'])
        total_weight = jnp.where(total_weight > 0, total_weight, 1.0)

        def loss_fn(params, micro, r):
            loss_sum, sums = task.loss(model, params, micro, r, train=True)
            return loss_sum / total_weight, sums

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        # Strided micro-batches (rows i, i+k, …) keep every micro-batch spread over all
        # data shards instead of living on a few devices. Micro-batch i draws its dropout
        # from fold_in(rng, i) whatever grad_accum is, and gradients add up in float32.
        micro = jax.tree.map(lambda x: x.reshape(-1, grad_accum, *x.shape[1:]).swapaxes(0, 1), batch)

        def accumulate(carry, inputs):
            i, mb = inputs
            (_, s), g = grad_fn(state.params, mb, jax.random.fold_in(rng, i))
            g = jax.tree.map(lambda x: x.astype(jnp.float32), g)
            return jax.tree.map(jnp.add, carry, (g, s)), None

        sums_shape = jax.eval_shape(lambda: grad_fn(
            state.params, jax.tree.map(lambda x: x[0], micro), rng)[0][1])
        zeros = (jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params),
                 jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), sums_shape))
        (grads, sums), _ = jax.lax.scan(accumulate, zeros, (jnp.arange(grad_accum), micro))
        grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(sums, grad_norm=optax.global_norm(grads), lr=schedule(state.step))
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def jit_train_step(task, model, tx, schedule, config, mesh, abstract):
    """The train step jitted with state/batch shardings on `mesh` and donated state."""
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    return jax.jit(make_train_step(task, model, tx, schedule, config.grad_accum),
                   in_shardings=(state_sh, sharding.batch_sharding(mesh), sharding.replicated(mesh)),
                   out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)


def make_eval_step(task, model):
    """A pure `(params, batch) -> sums` over one evaluation batch (dropout off)."""
    def eval_step(params, batch):
        return task.loss(model, params, batch, jax.random.key(0), train=False)[1]
    return eval_step


def evaluate(eval_step, params, data, mesh) -> dict:
    """Sums over every evaluation batch (last one padded), accumulated in float64 on host."""
    total = {}
    for batch in data.eval_batches():
        sums = jax.device_get(eval_step(params, sharding.global_batch(batch, mesh)))
        for k, v in sums.items():
            total[k] = total.get(k, 0.0) + np.asarray(v, np.float64)
    return total


def init_state(task, config, vocab_size: int, mesh):
    """(model, tx, schedule, abstract state with shardings, jitted sharded init fn)."""
    model = task.build_model(config, vocab_size)
    tx, schedule = make_optimizer(config.optim, config.total_steps, config.model.num_layers)

    def init(rng):
        params = model.init({'params': rng}, *task.dummy_inputs(config), train=False)['params']
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))

    boxed = jax.eval_shape(init, jax.random.key(0))
    shardings = sharding.logical_shardings(boxed, mesh, config.mesh.rules)
    # `shardings` is a prefix of the state: it has a leaf where the state has an empty node
    # (optax.MaskedNode for frozen params), which is kept as is.
    abstract = jax.tree.map(
        lambda s, a: a if isinstance(a, optax.MaskedNode) else jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        shardings, nn.unbox(boxed))
    init_fn = jax.jit(lambda r: nn.unbox(init(r)), out_shardings=jax.tree.map(lambda a: a.sharding, abstract))
    return model, tx, schedule, abstract, init_fn


def _restore(config, workdir, abstract):
    """Resume order: latest readable checkpoint in workdir, then config.resume, else None."""
    mngr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), config.keep_checkpoints)
    restored = checkpoint.restore_latest(mngr, abstract)
    if restored is None and config.resume:
        src = config.resume
        src = os.path.join(src, 'checkpoints') if os.path.isdir(os.path.join(src, 'checkpoints')) else src
        if not os.path.isdir(src):
            raise FileNotFoundError(f'config.resume={config.resume!r} is not a directory')
        source = checkpoint.manager(src, config.keep_checkpoints)
        try:
            restored = checkpoint.restore_latest(source, abstract)
        finally:
            source.close()
        if restored is None:
            raise FileNotFoundError(f'config.resume={config.resume!r} holds no checkpoint')
    return mngr, restored


def _init_from(config, task, state, abstract, tx, log):
    """A fresh state whose params come from config.init_from where path and shape match."""
    if config.init_from.startswith('hf:'):
        loaded = task.load_hf(config, config.init_from[3:])
    else:
        src = config.init_from
        src = os.path.join(src, 'checkpoints') if os.path.isdir(os.path.join(src, 'checkpoints')) else src
        loaded = checkpoint.load_params(src)[1]
    params, report = checkpoint.merge_params(jax.device_get(state.params), loaded)
    if not report['loaded']:
        raise ValueError(f'config.init_from={config.init_from!r} shares no parameter (path and '
                         f'shape) with this model; e.g. it has {report["unused"][:3]}')
    log(f"init_from {config.init_from}: {len(report['loaded'])} tensors loaded, "
        f"{len(report['new'])} new ({', '.join(report['new'][:4])}{', …' if len(report['new']) > 4 else ''}), "
        f"{len(report['unused'])} unused")
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    return jax.jit(lambda p: TrainState(jnp.zeros((), jnp.int32), p, tx.init(p)), out_shardings=state_sh)(params)


class _StepLog:
    """Collects per-step device metrics; on flush checks them and writes aggregates."""

    def __init__(self, task, config, writer, step_flops: float, peak: float):
        self.task, self.config, self.writer = task, config, writer
        self.step_flops, self.peak = step_flops, peak
        self.pending, self.steps, self.t0 = [], 0, None

    def add(self, step, metrics):
        self.pending.append((step, metrics))
        self.steps += 1
        if self.t0 is None:  # exclude compilation: time from the end of the first step
            jax.block_until_ready(metrics)
            self.restart_clock()

    def restart_clock(self):
        self.steps, self.t0 = 0, time.perf_counter()

    def flush(self, step, extra: dict, last_checkpoint):
        """Raises FloatingPointError at the first non-finite loss or gradient."""
        if not self.pending:
            return None
        fetched = jax.device_get([m for _, m in self.pending])
        for (s, _), m in zip(self.pending, fetched):
            if not (math.isfinite(float(m['loss'])) and math.isfinite(float(m['grad_norm']))):
                raise FloatingPointError(
                    f'non-finite train loss {float(m["loss"])} / grad norm {float(m["grad_norm"])} '
                    f'at step {s}; last good checkpoint: {last_checkpoint()}')
        sums = {k: sum(np.asarray(m[k], np.float64) for m in fetched)
                for k in fetched[0] if k not in ('grad_norm', 'lr')}
        metrics = self.task.summarize(sums, 'train')
        metrics.update({'train/grad_norm': float(fetched[-1]['grad_norm']),
                        'train/lr': float(fetched[-1]['lr'])})
        if self.t0 is not None and self.steps:
            dt = time.perf_counter() - self.t0
            c = self.config
            metrics['train/tokens_per_sec'] = self.steps * c.batch_size * c.data.seq_len / dt
            metrics['train/mfu'] = self.steps * self.step_flops / dt / self.peak
        metrics.update(extra)
        self.writer.write(step, metrics)
        self.pending = []
        self.restart_clock()
        return metrics


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains per `config`, writing checkpoints, metrics and plots to `workdir`.

    Returns the final evaluation metrics (plus the baselines the task computed).
    """
    config_lib.validate(config, jax.device_count(), jax.process_count())
    mesh = sharding.make_mesh(config.mesh)
    is_main = jax.process_index() == 0
    log = tqdm.tqdm.write if is_main else (lambda *_: None)
    if is_main:
        config_lib.save_config(config, workdir)
    task = tasks.get(config.task)
    vocab = task.load_vocab(config)
    model, tx, schedule, abstract, init_fn = init_state(task, config, len(vocab), mesh)
    mngr, restored = _restore(config, workdir, abstract)
    start, state, data_state = restored or (0, None, None)
    if restored:
        log(f'resumed from step {start} (data position {data_state})')
    # Data before the first compile: a missing dataset fails in seconds, not minutes.
    data = task.make_data(config, vocab, sharding.local_rows(config.batch_size),
                          sharding.local_rows(config.eval_batch_size), data_state)
    init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
    if state is None:
        state = init_fn(init_rng)
        if config.init_from:
            state = _init_from(config, task, state, abstract, tx, log)

    writer = MetricWriter(workdir)
    peak = (config.peak_flops or flops.measure_matmul_peak()) * jax.device_count()
    step_flops = task.flops_per_token(state.params, config) * config.batch_size * config.data.seq_len
    steps = _StepLog(task, config, writer, step_flops, peak)
    # Steps are traced with the mesh and logical rules in scope (activation constraints).
    # Init stays outside (jit's out_shardings place the params; flax would also constrain
    # initializer outputs there) and so does end-of-run sampling (a one-device decode loop).
    try:
        with sharding.context(mesh, config.mesh.rules):
            state, step, final, final_sums = _loop(config, task, model, tx, schedule, abstract, mesh,
                                                   data, state, start, mngr, writer, steps, train_rng, log)
    finally:
        mngr.wait_until_finished()
        mngr.close()
    events = read_metrics(workdir) if is_main else []
    baseline = ([e[task.BASELINE] for e in events if task.BASELINE in e] or [None])[-1]  # newest
    if is_main:
        plots.training_curves(events, os.path.join(workdir, 'loss_curve.png'), task.HEADLINE,
                              task.BASELINE, baseline)
        first = next(e[task.HEADLINE] for e in events if task.HEADLINE in e)
        log(f'{task.HEADLINE} {first:.4g} at the first evaluation -> {final[task.HEADLINE]:.4g} at step '
            f'{step}' + (f'; baseline {task.BASELINE} {baseline:.4g}' if baseline is not None else ''))
    task.write_outputs(config, state.params, vocab, workdir, jax.random.fold_in(init_rng, step), final_sums)
    writer.close()
    return {**final, **({task.BASELINE: baseline} if baseline is not None else {})}


def _loop(config, task, model, tx, schedule, abstract, mesh, data, state, start, mngr, writer,
          steps, train_rng, log):
    """Evaluates at the start of a fresh run, trains to total_steps, evaluates at the end
    (a finished run only re-evaluates, with the baselines, e.g. on another eval_split).

    Returns (state, step, final eval metrics, final eval sums).
    """
    train_step = jit_train_step(task, model, tx, schedule, config, mesh, abstract)
    eval_step = jax.jit(make_eval_step(task, model),
                        in_shardings=(jax.tree.map(lambda a: a.sharding, abstract.params),
                                      sharding.batch_sharding(mesh)),
                        out_shardings=sharding.replicated(mesh))

    def run_eval(step):
        sums = evaluate(eval_step, state.params, data, mesh)
        metrics = task.summarize(sums, 'val')
        writer.write(step, metrics)
        log(f'step {step}: ' + ', '.join(f'{k} {v:.4g}' for k, v in metrics.items()))
        return metrics, sums

    def last_checkpoint():
        mngr.wait_until_finished()
        last = mngr.latest_step()
        return 'none' if last is None else f'step {last} in {mngr.directory}'

    if start == 0 or start >= config.total_steps:  # a fresh run, or a finished one re-evaluated
        baselines = task.baselines(config, data)
        writer.write(start, baselines)
        for name, value in baselines.items():
            log(f'baseline {name}: {value:.4g}')
    if start == 0:
        run_eval(0)
        log(f'eval data: {dict(data.eval_stats)}')
    bar = tqdm.tqdm(total=config.total_steps, initial=start, desc='train', dynamic_ncols=True,
                    disable=not (jax.process_index() == 0 and config.progress_bar))
    step = start
    while step < config.total_steps:
        batch = sharding.global_batch(next(data.train), mesh)
        state, metrics = train_step(state, batch, jax.random.fold_in(train_rng, step))
        step += 1
        steps.add(step, metrics)
        bar.update(1)
        last = step == config.total_steps
        evaluate_now = config.eval_every and step % config.eval_every == 0 and not last
        save_now = step % config.checkpoint_every == 0 or last
        # Flush before evaluating or saving: never evaluate or checkpoint a non-finite state.
        if step % config.log_every == 0 or last or evaluate_now or save_now:
            extra = {f'data/train_{k}': v for k, v in data.train_stats.items()}
            logged = steps.flush(step, extra, last_checkpoint)
            if logged:
                bar.set_postfix(loss=f"{logged['train/loss']:.3f}", refresh=False)
        if evaluate_now:
            run_eval(step)
        if save_now:
            checkpoint.save(mngr, step, state, dict(data.train.state))
        if evaluate_now or save_now:
            steps.restart_clock()
    bar.close()
    return (state, step, *run_eval(step))
