"""A data-parallel (and fsdp, and tensor-parallel) train step equals the 1-device step."""

import jax
import numpy as np
import pytest

from research import config as config_lib, sharding, tasks
from research.train import init_state, make_train_step


def tiny_config(**mesh):
    c = config_lib.base_config()
    c.model.update(num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=16, dropout=0.1)
    c.data.seq_len = 16
    c.batch_size = 16
    c.mesh.update(mesh)
    return c


def one_step(config, devices, batch):
    mesh = sharding.make_mesh(config.mesh, devices)
    task = tasks.get('lm')
    model, tx, schedule, abstract, init_fn = init_state(task, config, 50, mesh)
    state = init_fn(jax.random.key(0))
    state_sh = jax.tree.map(lambda a: a.sharding, abstract)
    step = jax.jit(make_train_step(task, model, tx, schedule, config.grad_accum),
                   in_shardings=(state_sh, sharding.batch_sharding(mesh), sharding.replicated(mesh)),
                   out_shardings=(state_sh, sharding.replicated(mesh)))
    for i in range(2):
        state, metrics = step(state, sharding.global_batch(batch, mesh), jax.random.key(i))
    return jax.device_get(state.params), jax.device_get(metrics)


@pytest.fixture(scope='module')
def batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, (16, 17)).astype(np.int32)
    weights = (rng.random((16, 16)) > 0.1).astype(np.float32)
    return dict(inputs=tokens[:, :-1], targets=tokens[:, 1:], weights=weights)


@pytest.fixture(scope='module')
def reference(batch):
    assert jax.device_count() == 8, 'tests/conftest.py sets 8 fake CPU devices'
    return one_step(tiny_config(), jax.devices()[:1], batch)


@pytest.mark.parametrize('mesh', [dict(data=8), dict(data=2, fsdp=4), dict(data=2, fsdp=2, tensor=2)])
def test_sharded_step_equals_single_device(batch, reference, mesh):
    """Same params after 2 steps with dropout on: the RNG does not depend on the layout."""
    params, metrics = one_step(tiny_config(**mesh), jax.devices(), batch)
    assert_close(params, metrics, *reference)


def test_grad_accumulation_equals_full_batch(batch):
    """Micro-batches draw their own dropout masks, so compare with dropout off."""
    config = tiny_config()
    config.model.dropout = 0.0
    ref = one_step(config, jax.devices()[:1], batch)
    config.grad_accum, config.mesh.data = 2, 4
    assert_close(*one_step(config, jax.devices(), batch), *ref)


def assert_close(params, metrics, ref_params, ref_metrics):
    np.testing.assert_allclose(metrics['loss'], ref_metrics['loss'], rtol=1e-5)
    diff = jax.tree.map(lambda a, b: np.max(np.abs(a - b)), params, ref_params)
    assert max(jax.tree.leaves(diff)) < 1e-5, diff


def test_fsdp_really_shards_params(batch):
    config = tiny_config(data=2, fsdp=4)
    mesh = sharding.make_mesh(config.mesh)
    _, _, _, abstract, _ = init_state(tasks.get('lm'), config, 50, mesh)
    spec = abstract.params['block_0']['mlp']['wi']['kernel'].sharding.spec
    assert spec[0] == 'fsdp'
