"""Our side of the benchmark: the real train step (research.train) and research.sampling."""

import flax.linen as nn
import jax
import numpy as np

from benchmarks import common
from research import config as config_lib
from research import sampling, sharding, tasks
from research.train import init_state, jit_train_step


def config(kind: str, shape: str, dropout: float = 0.0, **model):
    s = common.dims(shape)
    c = config_lib.base_config()
    c.task, c.model.arch = ('lm', 'gpt') if kind == 'decoder' else ('mlm', 'bert')
    c.model.update(
        num_layers=s['layers'],
        d_model=s['d'],
        num_heads=s['heads'],
        mlp_dim=s['mlp'],
        max_len=s['seq'],
        dropout=dropout,
    )
    c.model.update(model)
    c.data.seq_len, c.batch_size = s['seq'], s['batch']
    return c


def train(kind: str, shape: str, warmup: int, steps: int, dropout: float = 0.0, **model) -> dict:
    c = config(kind, shape, dropout, **model)
    s = common.dims(shape)
    mesh = sharding.make_mesh(c.mesh)
    task = tasks.get(c)
    net, tx, schedule, abstract, init_fn = init_state(task, c, s['vocab'], mesh)
    state = init_fn(jax.random.key(0))
    ids, predict = common.tokens(shape)
    if kind == 'decoder':
        local = dict(inputs=ids[:, :-1], targets=ids[:, 1:], weights=np.ones_like(predict))
    else:  # the predicted positions read [MASK] (id 4 here); the loss is over them only
        local = dict(inputs=np.where(predict > 0, 4, ids[:, 1:]), targets=ids[:, 1:], weights=predict)
    batch = sharding.global_batch(local, mesh)
    step = jit_train_step(task, net, tx, schedule, c, mesh, abstract)
    rng = jax.random.key(1)

    def compile_fn():
        with sharding.context(mesh, c.mesh.rules):
            return step.lower(state, batch, rng).compile()

    def step_fn(compiled, st):
        st, metrics = compiled(st, batch, rng)
        jax.block_until_ready(metrics)
        return st

    out = common.time_train(compile_fn, step_fn, state, warmup, steps)
    return dict(
        out,
        params=sum(x.size for x in jax.tree.leaves(state.params)),
        flops_per_token=task.flops_per_token(state.params),
    )


def decode(batch: int, warmup: int, calls: int) -> dict:
    c = config('decoder', common.DECODE_SHAPE)
    s = common.dims(common.DECODE_SHAPE)
    task = tasks.get(c)
    params = nn.unbox(jax.jit(task.build_model(s['vocab']).init)(jax.random.key(0), *task.dummy_inputs())['params'])
    model = task.build_model(s['vocab'], decode=True)
    prompts = [list(p) for p in common.prompts(batch, s['vocab'])]
    run = lambda: sampling.generate(model, params, prompts, common.NEW_TOKENS, jax.random.key(0))
    return dict(common.time_calls(run, warmup, calls), params=sum(x.size for x in jax.tree.leaves(params)))
