"""Encoder: shapes, padding invariance, bidirectionality, heads, pooling, masks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models import layers
from research.models.encoder import (
    Encoder,
    MlmHead,
    SequenceClassifier,
    SpanHead,
    TokenClassifier,
    bert_config_to_kwargs,
    pool,
)

V, D, B, T = 50, 32, 2, 12
OPTIONS = {
    'bert': dict(pre_norm=False, positions='learned'),
    'modern': dict(pre_norm=True, positions='rotary', layer_norm_epsilon=1e-6),
}


def tiny(option='bert', **kw):
    return Encoder(vocab_size=V, num_layers=2, d_model=D, num_heads=4, mlp_dim=64, max_len=32, **OPTIONS[option], **kw)


def init(model, *args):
    return nn.unbox(model.init(jax.random.key(1), *args))['params']


def tokens_and_mask():
    tokens = jax.random.randint(jax.random.key(0), (B, T), 1, V)
    lengths = jnp.array([T, 7])
    mask = jnp.arange(T)[None, :] < lengths[:, None]
    return tokens, mask


@pytest.mark.parametrize('option', sorted(OPTIONS))
def test_shapes_and_layout(option):
    model = tiny(option, pooler=True)
    tokens, mask = tokens_and_mask()
    params = init(model, tokens, mask)
    hidden, pooled = model.apply({'params': params}, tokens, mask, jnp.ones_like(tokens))
    assert hidden.shape == (B, T, D) and pooled.shape == (B, D)
    assert ('embed_ln' in params) == (option == 'bert')
    assert ('ln_f' in params) == (option == 'modern')
    assert ('pos_embedding' in params) == (option == 'bert')
    assert params['type_embedding'].shape == (2, D)
    assert tiny(option).apply({'params': params}, tokens).shape == (B, T, D)  # no pooler


@pytest.mark.parametrize('option', sorted(OPTIONS))
def test_every_param_has_logical_names(option):
    tokens, mask = tokens_and_mask()
    boxed = jax.eval_shape(tiny(option, pooler=True).init, jax.random.key(0), tokens, mask)
    leaves = jax.tree.leaves(boxed['params'], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert leaves and all(isinstance(x, nn.Partitioned) and len(x.names) == x.value.ndim for x in leaves)


@pytest.mark.parametrize('option', sorted(OPTIONS))
def test_padding_does_not_change_real_tokens(option):
    model = tiny(option)
    tokens, mask = tokens_and_mask()
    params = init(model, tokens, mask)
    base = model.apply({'params': params}, tokens, mask)
    extra = jax.random.randint(jax.random.key(3), (B, 5), 1, V)
    padded = model.apply(
        {'params': params}, jnp.concatenate([tokens, extra], 1), jnp.concatenate([mask, jnp.zeros((B, 5), bool)], 1)
    )
    # row 1 already had padding from position 7: garbage there must not leak either
    garbage = tokens.at[1, 7:].set(3)
    again = model.apply({'params': params}, garbage, mask)
    for out in (padded[:, :T], again):
        np.testing.assert_allclose(out[0], base[0], atol=1e-5)
        np.testing.assert_allclose(out[1, :7], base[1, :7], atol=1e-5)


@pytest.mark.parametrize('option', sorted(OPTIONS))
def test_bidirectional(option):
    """A change at position t changes the hidden states of earlier positions too."""
    model = tiny(option)
    tokens, _ = tokens_and_mask()
    params = init(model, tokens)
    base = model.apply({'params': params}, tokens)
    changed = model.apply({'params': params}, tokens.at[:, 8].set((tokens[:, 8] + 7) % V))
    assert np.all(np.abs(np.asarray(changed - base))[:, :8].max(axis=-1) > 1e-6)


def test_mask_combines_with_causal():
    attn = layers.Attention(num_heads=2, causal=True)
    x = jax.random.normal(jax.random.key(0), (1, 6, 8))
    positions = jnp.arange(6)[None]
    mask = jnp.array([True, False, True, True, True, True])[None, None, None, :]
    params = attn.init(jax.random.key(1), x, positions, mask=mask)
    base = attn.apply(params, x, positions, mask=mask)
    masked_changed = attn.apply(params, x.at[:, 1].add(5.0), positions, mask=mask)
    np.testing.assert_allclose(masked_changed[:, 2:], base[:, 2:], atol=1e-6)  # key 1 hidden
    future_changed = attn.apply(params, x.at[:, 4].add(5.0), positions, mask=mask)
    np.testing.assert_allclose(future_changed[:, :4], base[:, :4], atol=1e-6)  # still causal


def test_mean_pooling_ignores_padding():
    tokens, mask = tokens_and_mask()
    hidden = jax.random.normal(jax.random.key(0), (B, T, D))
    pooled = pool(hidden, mask, 'mean')
    np.testing.assert_allclose(pooled[1], hidden[1, :7].mean(0), atol=1e-6)
    np.testing.assert_allclose(pool(hidden.at[1, 7:].set(1e3), mask, 'mean'), pooled, atol=1e-6)
    head = SequenceClassifier(num_classes=3, pooling='mean')
    params = head.init(jax.random.key(1), hidden, mask)
    np.testing.assert_allclose(
        head.apply(params, hidden.at[1, 7:].set(1e3), mask), head.apply(params, hidden, mask), atol=1e-5
    )


def test_heads_shapes():
    tokens, mask = tokens_and_mask()
    hidden = jax.random.normal(jax.random.key(0), (B, T, D))
    table = jax.random.normal(jax.random.key(1), (V, D))
    for head, args, shape in [
        (SequenceClassifier(3), (hidden, mask), (B, 3)),
        (SequenceClassifier(3), (hidden[:, 0],), (B, 3)),
        (TokenClassifier(5), (hidden,), (B, T, 5)),
        (MlmHead(), (hidden, table), (B, T, V)),
    ]:
        params = head.init(jax.random.key(2), *args)
        out = head.apply(params, *args)
        assert out.shape == shape and out.dtype == jnp.float32
    span = SpanHead()
    start, end = span.apply(span.init(jax.random.key(2), hidden, mask), hidden, mask)
    assert start.shape == end.shape == (B, T) and start.dtype == jnp.float32
    assert np.all(np.asarray(start[1, 7:]) < -1e8) and np.all(np.asarray(end[1, 7:]) < -1e8)


class _MaskedLm(nn.Module):
    """Encoder + MLM head tied to its token embedding (how a task composes them)."""

    @nn.compact
    def __call__(self, tokens, mask):
        encoder = tiny('bert', name='encoder')
        hidden = encoder(tokens, mask)
        return MlmHead(name='mlm')(hidden, encoder.embedding_table())


def test_mlm_head_is_tied_to_the_embedding():
    tokens, mask = tokens_and_mask()
    model = _MaskedLm()
    params = init(model, tokens, mask)
    assert set(params['mlm']) == {'transform', 'ln', 'bias'}  # no second [V, D] table
    unused = next(v for v in range(V) if v not in np.asarray(tokens))
    grads = jax.grad(lambda p: model.apply({'params': p}, tokens, mask)[..., unused].sum())(params)
    # a token absent from the input gets a gradient only through the tied output projection
    assert np.abs(np.asarray(grads['encoder']['embed']['embedding'][unused])).max() > 0


def test_bert_config_to_kwargs():
    hf = dict(
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        type_vocab_size=2,
        vocab_size=30522,
        layer_norm_eps=1e-12,
        hidden_act='gelu',
    )
    kw = bert_config_to_kwargs(hf)
    assert kw['d_model'] == 384 and kw['mlp_dim'] == 1536 and kw['activation'] == 'gelu_exact'
    assert kw['pre_norm'] is False and kw['pooler'] is True
    with pytest.raises(ValueError, match='hidden_act'):
        bert_config_to_kwargs(dict(hf, hidden_act='relu'))
