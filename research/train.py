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
from research.text.vocab import Vocab


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
        total_weight = jnp.maximum(jnp.sum(batch['weights']), 1.0)

        def loss_fn(params, micro, r):
            loss_sum, sums = task.loss(model, params, micro, r, train=True)
            return loss_sum / total_weight, sums

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        if grad_accum == 1:
            (_, sums), grads = grad_fn(state.params, batch, rng)
        else:
            # Strided micro-batches (rows i, i+k, …) keep every micro-batch spread over all
            # data shards instead of living on a few devices.
            micro = jax.tree.map(lambda x: x.reshape(-1, grad_accum, *x.shape[1:]).swapaxes(0, 1), batch)

            def accumulate(carry, inputs):
                i, mb = inputs
                (_, s), g = grad_fn(state.params, mb, jax.random.fold_in(rng, i))
                return jax.tree.map(jnp.add, carry, (g, s)), None

            sums_shape = jax.eval_shape(lambda: grad_fn(
                state.params, jax.tree.map(lambda x: x[0], micro), rng)[0][1])
            zeros = (jax.tree.map(jnp.zeros_like, state.params),
                     jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), sums_shape))
            (grads, sums), _ = jax.lax.scan(accumulate, zeros, (jnp.arange(grad_accum), micro))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(sums, grad_norm=optax.global_norm(grads), lr=schedule(state.step))
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


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
            total[k] = total.get(k, 0.0) + np.float64(v)
    return total


def init_state(task, config, vocab_size: int, mesh):
    """(model, tx, schedule, abstract state with shardings, jitted sharded init fn)."""
    model = task.build_model(config, vocab_size)
    tx, schedule = make_optimizer(config.optim, config.total_steps)

    def init(rng):
        params = model.init({'params': rng}, task.dummy_inputs(config), train=False)['params']
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))

    boxed = jax.eval_shape(init, jax.random.key(0))
    shardings = sharding.logical_shardings(boxed, mesh, config.mesh.rules)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            nn.unbox(boxed), shardings)
    init_fn = jax.jit(lambda r: nn.unbox(init(r)), out_shardings=shardings)
    return model, tx, schedule, abstract, init_fn


def _restore(config, workdir, abstract):
    """Resume order: latest readable checkpoint in workdir, then config.resume, else None."""
    mngr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), config.keep_checkpoints)
    restored = checkpoint.restore_latest(mngr, abstract)
    if restored is None and config.resume:
        src = config.resume
        src = os.path.join(src, 'checkpoints') if os.path.isdir(os.path.join(src, 'checkpoints')) else src
        restored = checkpoint.restore_latest(checkpoint.manager(src, config.keep_checkpoints), abstract)
        if restored is None:
            raise FileNotFoundError(f'config.resume={config.resume!r} holds no readable checkpoint')
    return mngr, restored


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains per `config`, writing checkpoints, metrics and plots to `workdir`.

    Returns the final evaluation metrics (plus the baselines the task computed).
    """
    config_lib.validate(config, jax.device_count())
    is_main = jax.process_index() == 0
    log = tqdm.tqdm.write if is_main else (lambda *_: None)
    if is_main:
        config_lib.save_config(config, workdir)
    mesh = sharding.make_mesh(config.mesh)
    task = tasks.get(config.task)
    vocab = Vocab.load(config.data.vocab_path)
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

    batch_sh, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    train_step = jax.jit(make_train_step(task, model, tx, schedule, config.grad_accum),
                         in_shardings=(state_sh, batch_sh, repl), out_shardings=(state_sh, repl),
                         donate_argnums=0)
    eval_step = jax.jit(make_eval_step(task, model), in_shardings=(state_sh.params, batch_sh),
                        out_shardings=repl)
    writer = MetricWriter(workdir)

    def run_eval(step):
        metrics = task.summarize(evaluate(eval_step, state.params, data, mesh), 'val')
        writer.write(step, metrics)
        log(f'step {step}: ' + ', '.join(f'{k} {v:.4g}' for k, v in metrics.items()))
        return metrics

    baselines = {}
    if start == 0:
        if config.data.unigram_baseline:
            baselines['val/unigram_perplexity'] = data.unigram_perplexity()
            writer.write(0, baselines)
            log(f"unigram baseline: val perplexity {baselines['val/unigram_perplexity']:.4g}")
        run_eval(0)
        log(f'eval data: {dict(data.eval_stats)}')

    peak = (config.peak_flops or flops.measure_matmul_peak()) * jax.device_count()
    step_flops = task.flops_per_token(state.params, config) * config.batch_size * config.data.seq_len
    pending, window_steps, t0 = [], 0, None

    def flush(step):
        """Fetches pending step metrics, stops on a non-finite loss, logs their aggregate."""
        nonlocal pending, window_steps, t0
        if not pending:
            return
        fetched = jax.device_get([m for _, m in pending])
        for (s, _), m in zip(pending, fetched):
            if not math.isfinite(float(m['loss'])):
                mngr.wait_until_finished()
                last = mngr.latest_step()
                raise FloatingPointError(
                    f'train loss is {float(m["loss"])} at step {s}; last good checkpoint: '
                    + (f'step {last} in {mngr.directory}' if last is not None else 'none'))
        sums = {k: sum(float(m[k]) for m in fetched) for k in ('loss', 'correct', 'weight')}
        metrics = task.summarize(sums, 'train')
        metrics.update({'train/grad_norm': float(fetched[-1]['grad_norm']),
                        'train/lr': float(fetched[-1]['lr'])})
        if t0 is not None and window_steps:
            dt = time.perf_counter() - t0
            metrics['train/tokens_per_sec'] = window_steps * config.batch_size * config.data.seq_len / dt
            metrics['train/mfu'] = window_steps * step_flops / dt / peak
        for key, value in data.train_stats.items():
            metrics[f'data/train_{key}'] = value
        writer.write(step, metrics)
        bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", refresh=False)
        pending, window_steps, t0 = [], 0, time.perf_counter()

    bar = tqdm.tqdm(total=config.total_steps, initial=start, desc='train', dynamic_ncols=True,
                    disable=not (is_main and config.progress_bar))
    step = start
    while step < config.total_steps:
        batch = sharding.global_batch(next(data.train), mesh)
        state, metrics = train_step(state, batch, jax.random.fold_in(train_rng, step))
        step += 1
        pending.append((step, metrics))
        window_steps += 1
        bar.update(1)
        if t0 is None:  # exclude compilation from throughput: time from the first step's end
            jax.block_until_ready(metrics)
            window_steps, t0 = 0, time.perf_counter()
        if step % config.log_every == 0 or step == config.total_steps:
            flush(step)
        if config.eval_every and step % config.eval_every == 0 and step < config.total_steps:
            run_eval(step)
            t0 = time.perf_counter()
        if step % config.checkpoint_every == 0 or step == config.total_steps:
            flush(step)  # never checkpoint a state whose loss went non-finite
            checkpoint.save(mngr, step, state, dict(data.train.state))
            t0 = time.perf_counter()
    bar.close()
    final = run_eval(step)
    mngr.wait_until_finished()
    if is_main:
        events = read_metrics(workdir)
        baseline = next((e['val/unigram_perplexity'] for e in events if 'val/unigram_perplexity' in e), None)
        plots.loss_curve(events, os.path.join(workdir, 'loss_curve.png'), baseline)
    if config.sample.prompts:  # every process joins the (sharded) computation
        task.write_samples(config, state.params, vocab, os.path.join(workdir, 'samples.txt'),
                           jax.random.fold_in(init_rng, step))
    writer.close()
    mngr.close()
    return {**final, **baselines}
