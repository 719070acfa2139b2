"""A data-parallel, fsdp and tensor-parallel train step equals the 1-device step: decoder,
encoder (MLM) and classifier."""

import jax
import numpy as np
import pytest

from research import config as config_lib
from research import sharding, tasks
from research.train import init_state, jit_train_step


def tiny_config(**mesh):
    """Plain SGD at a constant, large lr: parameter changes are the gradients, scaled.

    (Adam's first steps are lr * sign(g), which would hide a wrongly scaled gradient.)
    """
    c = config_lib.base_config()
    c.model.update(num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=16, dropout=0.1)
    c.optim.update(
        name='sgd', lr=0.5, schedule='constant', warmup_steps=0, momentum=0.0, weight_decay=0.0, clip_norm=0.0
    )
    c.data.seq_len = 16
    c.batch_size = 16
    c.mesh.update(mesh)
    return c


def two_steps(config, devices, batch):
    """(initial params, params after 2 steps, last step's metrics), all on host."""
    mesh = sharding.make_mesh(config.mesh, devices)
    task = tasks.get(config)
    model, tx, schedule, abstract, init_fn = init_state(task, config, 50, mesh)
    state = init_fn(jax.random.key(0))
    init = jax.device_get(state.params)
    step = jit_train_step(task, model, tx, schedule, config, mesh, abstract)
    with sharding.context(mesh, config.mesh.rules):
        for i in range(2):
            state, metrics = step(state, sharding.global_batch(batch, mesh), jax.random.key(i))
    return init, jax.device_get(state.params), jax.device_get(metrics)


@pytest.fixture(scope='module')
def batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, (16, 17)).astype(np.int32)
    weights = (rng.random((16, 16)) > 0.3).astype(np.float32)  # uneven weight per row
    return dict(inputs=tokens[:, :-1], targets=tokens[:, 1:], weights=weights)


@pytest.fixture(scope='module')
def reference(batch):
    assert jax.device_count() == 8, 'tests/conftest.py sets 8 fake CPU devices'
    return two_steps(tiny_config(), jax.devices()[:1], batch)


def task_case(task: str, bbc, batch):
    """(config maker, batch) of the masked LM (an encoder) or the BBC classifier."""
    rng = np.random.default_rng(1)

    def config(**mesh):
        c = tiny_config(**mesh)
        c.task = task
        c.data.data_dir = bbc['data_dir']  # the classifier reads its class names
        return c

    if task == 'mlm':
        masked = np.where(batch['weights'] > 0, 4, batch['targets'])  # [MASK] where predicted
        return config, dict(batch, inputs=masked)
    labels = rng.integers(0, 5, 16).astype(np.int32)
    mask = np.arange(16)[None, :] < rng.integers(4, 17, 16)[:, None]
    return config, dict(inputs=batch['inputs'], mask=mask, labels=labels, weights=np.ones(16, np.float32))


def assert_same(result, reference):
    init, params, metrics = result
    ref_init, ref_params, ref_metrics = reference
    jax.tree.map(np.testing.assert_array_equal, init, ref_init)  # init is layout-independent
    np.testing.assert_allclose(metrics['loss'], ref_metrics['loss'], rtol=1e-5)
    diff = max(jax.tree.leaves(jax.tree.map(lambda a, b: np.max(np.abs(a - b)), params, ref_params)))
    moved = max(jax.tree.leaves(jax.tree.map(lambda a, b: np.max(np.abs(a - b)), ref_params, ref_init)))
    assert diff < 1e-5, diff
    assert moved > 1e-2, f'the steps barely moved the params ({moved}); the comparison would be vacuous'


@pytest.mark.parametrize('mesh', [dict(data=8), dict(data=2, fsdp=4), dict(data=2, fsdp=2, tensor=2)])
def test_sharded_step_equals_single_device(batch, reference, mesh):
    """Same params after 2 steps with dropout on: the RNG does not depend on the layout."""
    assert_same(two_steps(tiny_config(**mesh), jax.devices(), batch), reference)


@pytest.fixture(scope='module')
def one_device():
    return {}  # task -> its 1-device result, computed once


SLOW = pytest.mark.slow  # the default suite keeps the mesh that uses all three axes


@pytest.mark.parametrize('task', ['mlm', 'classify'])
@pytest.mark.parametrize(
    'mesh',
    [pytest.param(dict(data=8), marks=SLOW), pytest.param(dict(fsdp=8), marks=SLOW), dict(data=2, fsdp=2, tensor=2)],
)
def test_encoder_and_classifier_steps_equal_single_device(bbc, batch, one_device, task, mesh):
    config, task_batch = task_case(task, bbc, batch)
    if task not in one_device:
        one_device[task] = two_steps(config(), jax.devices()[:1], task_batch)
    assert_same(two_steps(config(**mesh), jax.devices(), task_batch), one_device[task])


def test_grad_accumulation_equals_full_batch(batch):
    """Micro-batches draw their own dropout masks, so compare with dropout off."""
    config = tiny_config()
    config.model.dropout = 0.0
    ref = two_steps(config, jax.devices()[:1], batch)
    config.grad_accum, config.mesh.data = 2, 4
    assert_same(two_steps(config, jax.devices()[:4], batch), ref)


def test_fsdp_and_tensor_axes_really_shard():
    config = tiny_config(data=2, fsdp=2, tensor=2)
    mesh = sharding.make_mesh(config.mesh)
    _, _, _, abstract, _ = init_state(tasks.get(config), config, 50, mesh)
    assert tuple(abstract.params['block_0']['mlp']['wi']['kernel'].sharding.spec) == ('fsdp', 'tensor')
