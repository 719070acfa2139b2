"""Decoder: shapes, causality, KV-cache decoding equals the full forward pass."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import sampling
from research.models.config import TransformerConfig
from research.models.decoder import Decoder


def tiny(positions='learned', **kw):
    dims = dict(vocab_size=50, num_layers=2, d_model=32, num_heads=4, mlp_dim=64, max_len=32)
    return Decoder(TransformerConfig(**dims, positions=positions, **kw))


@pytest.mark.parametrize('positions', ['learned', 'rotary'])
def test_causality(positions):
    """Logits at position t do not depend on tokens after t."""
    model = tiny(positions)
    tokens = jax.random.randint(jax.random.key(0), (2, 16), 0, 50)
    params = nn.unbox(model.init(jax.random.key(1), tokens))['params']
    base = model.apply({'params': params}, tokens)
    for t in (0, 5, 14):
        changed = tokens.at[:, t + 1 :].set((tokens[:, t + 1 :] + 7) % 50)
        out = model.apply({'params': params}, changed)
        np.testing.assert_array_equal(out[:, : t + 1], base[:, : t + 1])
        assert not np.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_param_logical_axes():
    boxed = jax.eval_shape(tiny().init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))['params']
    specs = nn.get_partition_spec(boxed)
    assert tuple(specs['embed']['embedding']) == ('vocab', 'embed')
    assert tuple(specs['block_0']['mlp']['wi']['kernel']) == ('embed', 'mlp')
    assert tuple(specs['block_0']['attn']['qkv']) == ('embed', None, 'heads', 'kv')


@pytest.mark.parametrize('positions,tie', [('learned', True), ('rotary', False)])
def test_kv_cache_matches_full_forward(positions, tie):
    model = tiny(positions, tie_embeddings=tie)
    tokens = jax.random.randint(jax.random.key(0), (2, 12), 0, 50)
    params = nn.unbox(model.init(jax.random.key(1), tokens))['params']
    full = model.apply({'params': params}, tokens)
    dec = tiny(positions, tie_embeddings=tie, decode=True)
    cache = dec.init(jax.random.key(0), jnp.zeros((2, 12), jnp.int32))['cache']
    for t in range(12):
        logits, vs = dec.apply({'params': params, 'cache': cache}, tokens[:, t : t + 1], mutable=['cache'])
        cache = vs['cache']
        np.testing.assert_allclose(logits[:, 0], full[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('tie', [True, False])
def test_greedy_generate_matches_argmax_rollout(tie):
    model = tiny(tie_embeddings=tie)
    params = nn.unbox(model.init(jax.random.key(1), jnp.zeros((1, 8), jnp.int32)))['params']
    prompts = [[3, 4, 5], [7]]
    out = sampling.generate(tiny(tie_embeddings=tie, decode=True), params, prompts, 6, jax.random.key(0))
    for prompt, gen in zip(prompts, out):
        seq = list(prompt)
        for _ in range(6):
            seq.append(int(jnp.argmax(model.apply({'params': params}, jnp.array([seq]))[0, -1])))
        assert gen == seq[len(prompt) :]


def test_top_k_sampling_stays_in_top_k():
    logits = jnp.array([[0.0, 5.0, 4.0, -1.0, 3.0]] * 64)
    ids = sampling.sample_logits(logits, jax.random.key(0), temperature=1.0, top_k=2)
    assert set(np.asarray(ids).tolist()) == {1, 2}
