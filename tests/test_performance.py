"""What the speed work must not break or hide: chunked losses equal dense ones, prefill equals
token-by-token decoding, no recompilation, and the stated FLOPs formula agrees with XLA's count."""

import contextlib
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_lm_config

from research import config as config_lib
from research import flops, losses, metric_writer, sampling, sharding, tasks, train
from research.models import paths
from research.models.config import ARCHS, TransformerConfig
from research.models.decoder import Decoder
from research.models.encoder import Encoder
from research.models.seq2seq import Seq2Seq


@contextlib.contextmanager
def compilations():
    """Yields a list that collects the names of the jitted functions compiled meanwhile."""
    names = []

    class Collect(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith('Compiling '):
                names.append(record.getMessage().split()[1])

    logger = logging.getLogger('jax._src.interpreters.pxla')
    handler = Collect(logging.WARNING)
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield names
    finally:
        logger.removeHandler(handler)


def dense_losses(hidden, table, bias, targets, weights, smoothing=0.0):
    """(objective, cross-entropy, hits) through full logits; label smoothing by optax."""
    logits = jnp.einsum('btd,vd->btv', hidden, table) + bias
    labels = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1]), smoothing)
    objective = optax.softmax_cross_entropy(logits, labels)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    hits = jnp.sum((jnp.argmax(logits, -1) == targets) * weights)
    return jnp.sum(objective * weights), jnp.sum(xent * weights), hits


@pytest.mark.parametrize(
    'chunk_tokens,sparse,smoothing',
    [(1, True, 0.0), (12, True, 0.1), (24, False, 0.0), (10_000, False, 0.0), (1, False, 0.0), (24, False, 0.2)],
)
def test_chunked_losses_equal_dense(chunk_tokens, sparse, smoothing):
    """Values and gradients (hidden, table, bias) of the chunked fused loss equal plain autodiff
    through full logits, for every chunking, with zero-weight positions, with and without
    label smoothing (whose cross-entropy output stays the unsmoothed one)."""
    k = jax.random.split(jax.random.key(0), 4)
    b, t, d, v = 3, 8, 16, 40
    hidden = jax.random.normal(k[0], (b, t, d))
    table = jax.random.normal(k[1], (v, d)) * 0.3
    bias = jax.random.normal(k[2], (v,))
    targets = jax.random.randint(k[3], (b, t), 0, v)
    weights = (jnp.arange(b * t).reshape(b, t) % 5 != 0).astype(jnp.float32)

    def grads(fn):
        return jax.value_and_grad(lambda *a: fn(*a, targets, weights)[0], argnums=(0, 1, 2))(hidden, table, bias)

    chunked = lambda h, w, bi, y, wt: losses.token_losses(
        h, w, y, wt, bi, chunk_tokens=chunk_tokens, sparse=sparse, smoothing=smoothing
    )
    dense = lambda *a: dense_losses(*a, smoothing=smoothing)
    (value, g), (ref_value, ref_g) = grads(chunked), grads(dense)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for got, want in zip(g, ref_g):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    _, xent, hits = chunked(hidden, table, bias, targets, weights)
    _, ref_xent, ref_hits = dense(hidden, table, bias, targets, weights)
    np.testing.assert_allclose(xent, ref_xent, rtol=1e-5)
    assert float(hits) == float(ref_hits)
    # A target that is the argmax counts as a hit: force some, so the count is not trivially 0.
    hot = table[targets] * 50.0
    assert float(chunked(hot, table, bias * 0, targets, weights)[2]) == float(weights.sum())


@pytest.mark.parametrize('task_name', ['lm', 'translate'])
def test_task_loss_smooths_only_in_training(task_name):
    """config.loss.label_smoothing reaches the token tasks' training objective; evaluation's
    objective and the 'loss' sum are the plain cross-entropy."""
    k = jax.random.split(jax.random.key(3), 3)
    hidden, table = jax.random.normal(k[0], (2, 5, 8)), jax.random.normal(k[1], (11, 8))
    batch = dict(targets=jax.random.randint(k[2], (2, 5), 0, 11), weights=jnp.ones((2, 5)))

    class Fixed:  # a "model" returning fixed hidden states and output table
        def apply(self, *args, **kwargs):
            return hidden, table

    c = config_lib.base_config()
    c.task, c.loss.label_smoothing = task_name, 0.3
    task = tasks.get(c)
    smoothed = dense_losses(hidden, table, 0.0, batch['targets'], batch['weights'], smoothing=0.3)
    plain = dense_losses(hidden, table, 0.0, batch['targets'], batch['weights'])
    batch = dict(batch, inputs=batch['targets'], source=batch['targets'], source_mask=batch['weights'] > 0)
    objective, sums = task.loss(Fixed(), {}, batch, None, train=True)
    np.testing.assert_allclose([objective, sums['loss']], [smoothed[0], plain[1]], rtol=1e-5)
    objective, sums = task.loss(Fixed(), {}, batch, None, train=False)
    np.testing.assert_allclose([objective, sums['loss']], [plain[0], plain[1]], rtol=1e-5)


def tiny_decoder(**kw):
    dims = dict(vocab_size=60, num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=40)
    return Decoder(TransformerConfig(**dims, **kw))


@pytest.mark.parametrize('positions,temperature', [('learned', 0.0), ('rotary', 0.0), ('learned', 1.0)])
def test_prefill_equals_token_by_token(positions, temperature):
    """Prefilling the shortest prompt in one call gives the same tokens as feeding every
    position one at a time (prefill=1), greedy and sampled, with prompts of different lengths."""
    params = nn.unbox(tiny_decoder(positions=positions).init(jax.random.key(1), jnp.zeros((1, 8), jnp.int32)))
    model = tiny_decoder(positions=positions, decode=True)
    prompts = [[3, 4, 5, 6, 7, 8, 9], [11, 12, 13, 14], [20, 21, 22, 23, 24, 25]]
    lens = np.array([len(p) for p in prompts], np.int32)
    tokens = np.zeros((3, 7 + 20), np.int32)
    for i, p in enumerate(prompts):
        tokens[i, : len(p)] = p
    run = lambda prefill: np.asarray(
        sampling._decode_loop(
            model,
            params['params'],
            params['params']['embed']['embedding'].T,
            jnp.asarray(tokens),
            jnp.asarray(lens),
            jax.random.key(5),
            prefill,
            temperature,
            0,
        )
    )
    prefilled, stepwise = run(int(lens.min())), run(1)
    np.testing.assert_array_equal(prefilled, stepwise)
    for i, p in enumerate(prompts):  # prompts are kept, and something was generated after them
        assert prefilled[i, : len(p)].tolist() == p
    assert len(set(prefilled[:, 8:].ravel().tolist())) > 1


def test_decode_loop_compiles_once():
    params = nn.unbox(tiny_decoder().init(jax.random.key(1), jnp.zeros((1, 8), jnp.int32)))['params']
    model = tiny_decoder(decode=True)
    with compilations() as names:
        for i in range(3):
            sampling.generate(model, params, [[3 + i, 4, 5], [7, 8 + i, 9]], 5, jax.random.key(i))
    assert names.count('jit(_decode_loop)') == 1, names


def test_train_step_compiles_once(bbc, tmp_path):
    """Several steps, with logging, evaluation and checkpoints between them, compile one train step."""
    c = tiny_lm_config(bbc, total_steps=7, log_every=2, checkpoint_every=3)
    c.evals = {'task': dict(type='task', every=3)}
    with compilations() as names:
        train.train_and_evaluate(c, str(tmp_path / 'run'))
    assert names.count('jit(train_step)') == 1, names


@pytest.mark.parametrize('task', ['lm', 'mlm'])
def test_flops_formula_matches_xla_cost_analysis(task):
    """task.flops_per_token (6 · matmul params + 12 · L · T · D) is within 10% of the FLOPs XLA
    counts in the compiled train step (measured: +4% LM, +7% MLM: elementwise work and the
    optimizer), at a shape where the attention term is a third of the total: leaving it out,
    or counting 4 instead of 6 FLOPs per parameter, would fail."""
    c = config_lib.base_config()
    c.task, c.model.arch = task, 'gpt' if task == 'lm' else 'bert'
    c.model.update(num_layers=2, d_model=64, num_heads=4, mlp_dim=256, max_len=256, dropout=0.0)
    c.model.logits_chunk = 1 << 20  # one chunk: XLA counts a loop body once
    c.data.mask_rate = 1.0  # MLM: every position predicted, as XLA counts the projection
    c.data.seq_len, c.batch_size = 256, 4
    mesh = sharding.make_mesh(c.mesh, jax.devices()[:1])
    t = tasks.get(c)
    model, tx, schedule, abstract, init_fn = train.init_state(t, c, 512, mesh)
    step = train.jit_train_step(t, model, tx, schedule, c, mesh, abstract)
    ids = jnp.zeros((4, 256), jnp.int32)
    batch = sharding.global_batch(dict(inputs=ids, targets=ids, weights=jnp.ones((4, 256))), mesh)
    with sharding.context(mesh, c.mesh.rules):
        compiled = step.lower(abstract, batch, jax.random.key(0)).compile()
    counted = compiled.cost_analysis()['flops']
    params = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract.params)
    stated = t.flops_per_token(params) * 4 * 256
    assert abs(counted / stated - 1) < 0.1, (counted, stated)


@pytest.mark.parametrize(
    'arch,tie',
    [('gpt', True), ('gpt', False), ('bert', True), ('encoder', True), ('seq2seq', True), ('seq2seq', False)],
)
def test_flops_count_every_matmul_parameter_of_the_model(arch, tie):
    """research.flops counts from the config what the built model has: every parameter except
    the lookups (position and token-type tables, a token table that is not also the output)."""
    dims = dict(vocab_size=37, num_layers=3, d_model=16, num_heads=2, mlp_dim=24, max_len=20, tie_embeddings=tie)
    c = TransformerConfig(**{**ARCHS[arch], 'arch': arch, **dims})
    tokens = jnp.zeros((1, 8), jnp.int32)
    model, inputs = {
        'gpt': (Decoder(c), (tokens,)),
        'seq2seq': (Seq2Seq(c), (tokens, tokens == 0, tokens)),
    }.get(arch, (Encoder(c), (tokens,)))
    abstract = nn.unbox(jax.eval_shape(model.init, jax.random.key(0), *inputs)['params'])
    sizes = {paths.path_string(path): x.size for path, x in jax.tree_util.tree_leaves_with_path(abstract)}
    lookups = {'pos_embedding', 'type_embedding', 'source_pos', 'target_pos'}
    if arch in ('bert', 'encoder') or not tie:
        lookups.add('embed/embedding')  # an encoder's heads count their own output; untied: 'head'/'target_embed'
    assert flops.matmul_params(c) == sum(n for k, n in sizes.items() if k not in lookups)


def test_profile_steps_and_dropout_rng(bbc, tmp_path):
    """config.profile_steps writes a trace into WORKDIR/profile; config.dropout_rng swaps the
    dropout generator (another draw than threefry, the same on a rerun); a bad name fails early."""
    import glob

    def final_loss(workdir, **overrides):
        c = tiny_lm_config(bbc, total_steps=4, log_every=1, **overrides)
        train.train_and_evaluate(c, str(workdir))
        return [e['train/loss'] for e in metric_writer.read_metrics(str(workdir)) if 'train/loss' in e][-1]

    rbg = final_loss(tmp_path / 'a', dropout_rng='unsafe_rbg', profile_steps=2)
    assert glob.glob(str(tmp_path / 'a' / 'profile' / '**' / '*.xplane.pb'), recursive=True)
    assert glob.glob(str(tmp_path / 'a' / 'profile' / '**' / '*perfetto_trace.json.gz'), recursive=True)
    assert final_loss(tmp_path / 'b', dropout_rng='unsafe_rbg') == rbg
    assert final_loss(tmp_path / 'c') != rbg
    c = tiny_lm_config(bbc, dropout_rng='mt19937')
    with pytest.raises(config_lib.ConfigError, match="dropout_rng='mt19937'"):
        config_lib.validate(c, 1)
