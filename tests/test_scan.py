"""Scanned layers and remat policies compute what the unrolled blocks compute (decoder,
encoder, and the encoder-decoder's two stacks)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import config as config_lib
from research import optim, sampling, sharding, tasks
from research.models import layers, paths
from research.train import init_state, jit_train_step

VOCAB = 50


ARCH = {'lm': 'gpt', 'mlm': 'bert', 'translate': 'seq2seq'}


def config(task: str, **model):
    c = config_lib.base_config()
    c.task, c.model.arch = task, ARCH[task]
    c.model.update(num_layers=3, d_model=32, num_heads=4, mlp_dim=64, max_len=16, dropout=0.0, **model)
    c.data.seq_len, c.batch_size = 16, 8
    return c


def batch():
    """A batch every task here reads its part of (translation: the source, padded, too)."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, VOCAB, (8, 17)).astype(np.int32)
    source = rng.integers(5, VOCAB, (8, 16)).astype(np.int32)
    source_mask = np.arange(16) < rng.integers(3, 17, (8, 1))
    return dict(
        inputs=tokens[:, :-1],
        targets=tokens[:, 1:],
        weights=(rng.random((8, 16)) > 0.3).astype(np.float32),
        source=np.where(source_mask, source, 0),
        source_mask=source_mask,
    )


def loss_and_grads(c, params):
    task = tasks.get(c)
    model = task.build_model(VOCAB)
    b = jax.tree.map(jnp.asarray, batch())
    loss = lambda p: task.loss(model, p, b, jax.random.key(0), train=False)[0]  # noqa: E731
    return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize(
    'task,remat',
    [('lm', 'none'), ('mlm', 'full'), ('lm', 'dots_saveable'), ('translate', 'full')]
    + [
        pytest.param(t, r, marks=pytest.mark.slow)
        for t, r in (
            ('mlm', 'none'),
            ('lm', 'full'),
            ('mlm', 'dots_saveable'),
            ('translate', 'none'),
            ('translate', 'dots_saveable'),
        )
    ],
)
def test_scanned_blocks_equal_unrolled_ones(task, remat):
    unrolled = config(task)
    task_obj = tasks.get(unrolled)
    params = task_obj.build_model(VOCAB).init(jax.random.key(0), *task_obj.dummy_inputs())['params']
    params = nn.unbox(params)
    loss, grads = loss_and_grads(unrolled, params)
    scanned = layers.scan_params(params)
    roles = [paths.role(paths.path_string(p))[0] for p, _ in jax.tree_util.tree_leaves_with_path(scanned)]
    assert 'layers' in roles and 'layer' not in roles  # every layer moved into a stacked one
    jax.tree.map(np.testing.assert_array_equal, layers.unscan_params(scanned), params)  # a lossless round trip
    s_config = config(task, scan_layers=True, remat=remat)
    abstract = jax.eval_shape(tasks.get(s_config).build_model(VOCAB).init, jax.random.key(0), *task_obj.dummy_inputs())
    assert jax.tree.structure(nn.unbox(abstract['params'])) == jax.tree.structure(scanned)  # the scanned model's tree
    s_loss, s_grads = loss_and_grads(s_config, scanned)
    np.testing.assert_allclose(s_loss, loss, rtol=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), layers.unscan_params(s_grads), grads
    )


@pytest.mark.parametrize('remat', ['full', pytest.param('dots_saveable', marks=pytest.mark.slow)])
def test_remat_alone_equals_no_remat(remat):
    """Unrolled, rematerialised layers: the same loss and gradients (translation's two stacks)."""
    c = config('translate')
    task = tasks.get(c)
    params = nn.unbox(task.build_model(VOCAB).init(jax.random.key(0), *task.dummy_inputs())['params'])
    loss, grads = loss_and_grads(c, params)
    r_loss, r_grads = loss_and_grads(config('translate', remat=remat), params)
    np.testing.assert_allclose(r_loss, loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), r_grads, grads)


def test_scanned_init_has_a_layer_axis_sharded_like_one_block():
    c = config('lm', scan_layers=True)
    c.mesh.update(data=2, fsdp=2, tensor=2)
    abstract = init_state(tasks.get(c), c, VOCAB, sharding.make_mesh(c.mesh))[3]
    qkv = abstract.params['blocks']['block']['attn']['qkv']
    assert qkv.shape == (3, 32, 3, 4, 8)
    assert tuple(qkv.sharding.spec) == (None, 'fsdp', None, 'tensor', None)


def test_optimizer_treats_scanned_layers_like_unrolled_ones():
    """Weight decay skips biases and norms, layer decay scales each layer: in both layouts."""
    o = config_lib.base_config().optim
    o.update(name='sgd', lr=1.0, schedule='constant', warmup_steps=0, weight_decay=0.1, layer_decay=0.5, clip_norm=0.0)
    task = tasks.get(config('lm'))
    params = nn.unbox(task.build_model(VOCAB).init(jax.random.key(0), *task.dummy_inputs()))
    params = params['params']
    grads = jax.tree.map(jnp.ones_like, params)
    tx = optim.make_optimizer(o, 10, num_layers=3)[0]
    updates = tx.update(grads, tx.init(params), params)[0]
    scanned = layers.scan_params(params)
    s_updates = tx.update(layers.scan_params(grads), tx.init(scanned), scanned)[0]
    jax.tree.map(np.testing.assert_allclose, layers.unscan_params(s_updates), updates)


def test_sharded_scanned_step_equals_one_device():
    def step(c, devices):
        mesh = sharding.make_mesh(c.mesh, devices)
        task = tasks.get(c)
        model, tx, schedule, abstract, init_fn = init_state(task, c, VOCAB, mesh)
        state = init_fn(jax.random.key(0))
        train_step = jit_train_step(task, model, tx, schedule, c, mesh, abstract)
        with sharding.context(mesh, c.mesh.rules):
            state, metrics = train_step(state, sharding.global_batch(batch(), mesh), jax.random.key(1))
        return float(metrics['loss']), jax.device_get(state.params)

    one = step(config('lm', scan_layers=True, remat='full'), jax.devices()[:1])
    c = config('lm', scan_layers=True, remat='full')
    c.mesh.update(data=2, fsdp=2, tensor=2)
    eight = step(c, jax.devices())
    np.testing.assert_allclose(one[0], eight[0], rtol=1e-5)  # a weighted loss sum
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), one[1], eight[1])


def test_scanned_decoder_decodes_like_the_unrolled_one():
    unrolled, scanned = config('lm'), config('lm', scan_layers=True)
    task = tasks.get(unrolled)
    params = nn.unbox(task.build_model(VOCAB).init(jax.random.key(0), *task.dummy_inputs()))
    params = params['params']
    prompts = [[1, 7, 9], [1, 12]]
    out = {}
    for name, c, p in (('unrolled', unrolled, params), ('scanned', scanned, layers.scan_params(params))):
        model = tasks.get(c).build_model(VOCAB, decode=True)
        out[name] = sampling.generate(model, p, prompts, max_new_tokens=6, rng=jax.random.key(0), temperature=0.0)
    np.testing.assert_array_equal(out['scanned'], out['unrolled'])


def test_init_from_an_unrolled_checkpoint_into_scanned_layers(bbc, tmp_path):
    """Checkpoints do not resume across layouts, but init_from converts: every tensor loads."""
    from conftest import tiny_lm_config

    from research import checkpoint
    from research.train import setup, train_and_evaluate

    train_and_evaluate(tiny_lm_config(bbc, total_steps=2, model__num_layers=2), str(tmp_path / 'unrolled'))
    config = tiny_lm_config(bbc, total_steps=2, model__num_layers=2, model__scan_layers=True)
    config.init_from = str(tmp_path / 'unrolled')
    logged = []
    run, state, _, _ = setup(config, str(tmp_path / 'scanned'), log=logged.append, train=False)
    run.mngr.close()
    assert any('tensors loaded, 0 new' in line for line in logged), logged
    source = checkpoint.load_params(str(tmp_path / 'unrolled' / 'checkpoints'))[1]
    jax.tree.map(np.testing.assert_array_equal, layers.unscan_params(jax.device_get(state.params)), source)
