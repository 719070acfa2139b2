"""The encoder-decoder and its decoding: cache vs recompute, source padding, beam search,
scanned layers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import decoding
from research.models import layers
from research.models.config import TransformerConfig
from research.models.seq2seq import Seq2Seq

V, L, BOS = 40, 12, 2
CONFIG = TransformerConfig(arch='seq2seq', vocab_size=V, num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=32)


@pytest.fixture(scope='module')
def setup():
    """A randomly initialised model with large logits (so that decoding has clear choices and
    ends at <eos> sometimes) and a batch of sources of different lengths."""
    rng = np.random.default_rng(0)
    lengths = np.array([5, 9, 3, 7])
    source = np.where(np.arange(10) < lengths[:, None], rng.integers(4, V, (4, 10)), 0).astype(np.int32)
    mask = source > 0
    model = Seq2Seq(CONFIG)
    params = nn.unbox(model.init(jax.random.key(0), source, mask, source[:, :4])['params'])
    params = jax.tree.map(lambda x: x * 3.0, params)  # sharper distributions
    # <eos> is a token the model does choose: the first one that differs from row 0's first
    free = recompute_greedy(model, params, source[:1], mask[:1], [L], eos=-1)[0]
    eos = int(free[free != free[0]][0])
    return model, Seq2Seq(CONFIG.replace(decode=True)), params, source, mask, eos


def recompute_greedy(model, params, source, mask, limits, eos):
    """Greedy decoding by running the whole prefix again at every step (no cache)."""
    out = np.zeros((len(source), L), np.int32)
    for r in range(len(source)):
        prefix = [BOS]
        for i in range(int(limits[r])):
            logits = model.apply({'params': params}, source[r : r + 1], mask[r : r + 1], jnp.array([prefix]))
            prefix.append(int(jnp.argmax(logits[0, -1])))
            out[r, i] = prefix[-1]
            if prefix[-1] == eos:
                break
    return out


def test_cached_greedy_equals_full_recompute(setup):
    model, decoder, params, source, mask, eos = setup
    limits = decoding.max_lengths(mask, 1.0, 3, L)
    cached = decoding.greedy(decoder, params, source, mask, limits, max_len=L, bos_id=BOS, eos_id=eos)
    np.testing.assert_array_equal(cached, recompute_greedy(model, params, source, mask, limits, eos))
    assert (np.asarray(cached) == eos).any()  # some rows end at <eos>, others at their limit


def test_source_padding_changes_nothing(setup):
    model, decoder, params, source, mask, eos = setup
    limits = decoding.max_lengths(mask, 1.0, 3, L)
    padded, padded_mask = np.pad(source, ((0, 0), (0, 6))), np.pad(mask, ((0, 0), (0, 6)))
    kw = dict(max_len=L, bos_id=BOS, eos_id=eos)
    a = decoding.greedy(decoder, params, source, mask, limits, **kw)
    b = decoding.greedy(decoder, params, padded, padded_mask, limits, **kw)
    np.testing.assert_array_equal(a, b)
    beams = [decoding.beam_search(decoder, params, s, m, limits, beam=3, alpha=0.6, **kw) for s, m in
             ((source, mask), (padded, padded_mask))]  # fmt: skip
    np.testing.assert_array_equal(beams[0][0], beams[1][0])
    np.testing.assert_allclose(beams[0][1], beams[1][1], rtol=1e-5)
    soft = jax.tree.map(lambda x: x / 3.0, params)  # the initialisation: padding would get real attention
    targets = source[:, :5]
    logits = [model.apply({'params': soft}, s, m, targets) for s, m in ((source, mask), (padded, padded_mask))]
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)


def test_beam_of_one_is_greedy(setup):
    _, decoder, params, source, mask, eos = setup
    limits = decoding.max_lengths(mask, 1.0, 3, L)
    kw = dict(max_len=L, bos_id=BOS, eos_id=eos)
    greedy = decoding.greedy(decoder, params, source, mask, limits, **kw)
    tokens, _ = decoding.beam_search(decoder, params, source, mask, limits, beam=1, alpha=0.0, **kw)
    np.testing.assert_array_equal(tokens[:, 0], greedy)


@pytest.mark.parametrize('alpha', [0.6] + [pytest.param(a, marks=pytest.mark.slow) for a in (0.0, 2.0)])
def test_beam_hypotheses_are_scored_sorted_and_within_the_limit(setup, alpha):
    model, decoder, params, source, mask, eos = setup
    limits = np.asarray(decoding.max_lengths(mask, 0.5, 2, L))
    tokens, scores = decoding.beam_search(
        decoder, params, source, mask, limits, beam=4, alpha=alpha, max_len=L, bos_id=BOS, eos_id=eos
    )
    tokens, scores = np.asarray(tokens), np.asarray(scores)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    for r in range(len(source)):
        for h in range(4):
            ids = list(tokens[r, h])
            length = ids.index(eos) + 1 if eos in ids else int(np.count_nonzero(tokens[r, h]))
            assert 1 <= length <= limits[r] and not np.any(tokens[r, h, length:])
            # the score is the hypothesis' log-probability under the model, length-penalised
            targets = jnp.array([[BOS] + ids[:length]])
            logp = jax.nn.log_softmax(
                model.apply({'params': params}, source[r : r + 1], mask[r : r + 1], targets[:, :-1])
            )
            total = float(jnp.take_along_axis(logp[0], targets[0, 1:, None], 1).sum())
            np.testing.assert_allclose(scores[r, h], total / decoding.length_penalty(length, alpha), rtol=1e-4)


@pytest.mark.parametrize('remat', ['full', pytest.param('none', marks=pytest.mark.slow)])
def test_scanned_layers_decode_like_unrolled_ones(setup, remat):
    """The same params in the scanned layout (stacked KV caches, the memory broadcast to every
    layer; beam search reorders the caches along their batch axis, the second) decode the same."""
    _, decoder, params, source, mask, eos = setup
    scanned = Seq2Seq(CONFIG.replace(decode=True, scan_layers=True, remat=remat))
    s_params = layers.scan_params(params)
    assert {'encoders', 'decoders'} <= set(s_params) and 'encoder_0' not in s_params
    limits = decoding.max_lengths(mask, 1.0, 3, L)
    kw = dict(max_len=L, bos_id=BOS, eos_id=eos)
    np.testing.assert_array_equal(
        decoding.greedy(scanned, s_params, source, mask, limits, **kw),
        decoding.greedy(decoder, params, source, mask, limits, **kw),
    )
    beams = [
        decoding.beam_search(m, p, source, mask, limits, beam=3, alpha=0.6, **kw)
        for m, p in ((scanned, s_params), (decoder, params))
    ]
    np.testing.assert_array_equal(beams[0][0], beams[1][0])
    np.testing.assert_allclose(beams[0][1], beams[1][1], rtol=1e-5)


@pytest.mark.parametrize('mesh', [pytest.param(dict(data=8), marks=pytest.mark.slow), dict(data=2, fsdp=2, tensor=2)])
def test_translate_training_loss_equal_on_1_and_8_devices(mesh):
    from research import config as config_lib
    from research import sharding, tasks
    from research.train import init_state, jit_train_step

    def loss_after_two_steps(devices, **mesh):
        c = config_lib.base_config()
        c.task, c.model.arch = 'translate', 'seq2seq'
        c.model.update(num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=16, dropout=0.0)
        c.data.seq_len, c.batch_size = 16, 16
        c.mesh.update(mesh)
        m = sharding.make_mesh(c.mesh, devices)
        task = tasks.get(c)
        model, tx, schedule, abstract, init_fn = init_state(task, c, V, m)
        state, step = init_fn(jax.random.key(0)), jit_train_step(task, model, tx, schedule, c, m, abstract)
        rng = np.random.default_rng(0)
        lengths = rng.integers(3, 17, (2, 16))
        ids = rng.integers(4, V, (2, 16, 16)).astype(np.int32)
        source = np.where(np.arange(16) < lengths[0, :, None], ids[0], 0)
        targets = np.where(np.arange(16) < lengths[1, :, None], ids[1], 0)
        inputs = np.where(targets > 0, np.concatenate([np.full((16, 1), BOS), targets[:, :-1]], 1), 0)
        batch = dict(source=source, source_mask=source > 0, inputs=inputs, targets=targets,
                     weights=(targets > 0).astype(np.float32))  # fmt: skip
        with sharding.context(m, c.mesh.rules):
            for i in range(2):
                state, metrics = step(state, sharding.global_batch(batch, m), jax.random.key(i))
        return float(metrics['loss'])

    np.testing.assert_allclose(
        loss_after_two_steps(jax.devices(), **mesh), loss_after_two_steps(jax.devices()[:1]), rtol=1e-5
    )
