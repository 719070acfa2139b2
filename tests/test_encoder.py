"""Encoder: shapes, padding invariance, bidirectionality, heads, pooling, masks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models import layers
from research.models.config import ARCHS, TransformerConfig
from research.models.encoder import (
    Encoder,
    MlmHead,
    SequenceClassifier,
    SpanHead,
    TokenClassifier,
    bert_config,
    pool,
)

V, D, B, T = 50, 32, 2, 12
OPTIONS = {'bert': 'bert', 'modern': 'encoder'}  # the arch presets; both with token types here


def config(option='bert'):
    arch = OPTIONS[option]
    return TransformerConfig(
        **{**ARCHS[arch], 'type_vocab_size': 2},
        arch=arch,
        vocab_size=V,
        num_layers=2,
        d_model=D,
        num_heads=4,
        mlp_dim=64,
        max_len=32,
    )


def tiny(option='bert', **kw):
    return Encoder(config(option), **kw)


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
    attn = layers.Attention(TransformerConfig(d_model=8, num_heads=2), causal=True)
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
    head = SequenceClassifier(config(), num_classes=3, pooling='mean')
    params = head.init(jax.random.key(1), hidden, mask)
    np.testing.assert_allclose(
        head.apply(params, hidden.at[1, 7:].set(1e3), mask), head.apply(params, hidden, mask), atol=1e-5
    )


def test_heads_shapes():
    tokens, mask = tokens_and_mask()
    hidden = jax.random.normal(jax.random.key(0), (B, T, D))
    table = jax.random.normal(jax.random.key(1), (V, D))
    for head, args, shape in [
        (SequenceClassifier(config(), 3), (hidden, mask), (B, 3)),
        (SequenceClassifier(config(), 3), (hidden[:, 0],), (B, 3)),
        (TokenClassifier(config(), 5), (hidden,), (B, T, 5)),
        (MlmHead(config()), (hidden, table), (B, T, V)),
    ]:
        params = head.init(jax.random.key(2), *args)
        out = head.apply(params, *args)
        assert out.shape == shape and out.dtype == jnp.float32
    span = SpanHead(config())
    start, end = span.apply(span.init(jax.random.key(2), hidden, mask), hidden, mask)
    assert start.shape == end.shape == (B, T) and start.dtype == jnp.float32
    assert np.all(np.asarray(start[1, 7:]) < -1e8) and np.all(np.asarray(end[1, 7:]) < -1e8)


class _MaskedLm(nn.Module):
    """Encoder + MLM head tied to its token embedding (how a task composes them)."""

    @nn.compact
    def __call__(self, tokens, mask):
        encoder = tiny('bert', name='encoder')
        hidden = encoder(tokens, mask)
        return MlmHead(encoder.config, name='mlm')(hidden, encoder.embedding_table())


def test_mlm_head_is_tied_to_the_embedding():
    tokens, mask = tokens_and_mask()
    model = _MaskedLm()
    params = init(model, tokens, mask)
    assert set(params['mlm']) == {'transform', 'ln', 'bias'}  # no second [V, D] table
    unused = next(v for v in range(V) if v not in np.asarray(tokens))
    grads = jax.grad(lambda p: model.apply({'params': p}, tokens, mask)[..., unused].sum())(params)
    # a token absent from the input gets a gradient only through the tied output projection
    assert np.abs(np.asarray(grads['encoder']['embed']['embedding'][unused])).max() > 0


def test_bert_config():
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
    c = bert_config(hf, dtype='bfloat16')
    assert c.d_model == 384 and c.mlp_dim == 1536 and c.activation == 'gelu_exact' and c.vocab_size == 30522
    assert c.pre_norm is False and c.positions == 'learned' and c.layer_norm_epsilon == 1e-12
    assert c.dtype == jnp.bfloat16 and c.param_dtype == jnp.float32  # names become dtypes
    with pytest.raises(ValueError, match='hidden_act'):
        bert_config(dict(hf, hidden_act='relu'))


def test_arch_presets_are_data_over_the_model_section():
    """from_config: the model section's fields, then its arch's preset, then overrides; one config
    (hashable, so it can be a static jit argument) for every module of the model."""
    section = dict(arch='bert', num_layers=3, d_model=64, num_heads=4, mlp_dim=128, max_len=64, positions='rotary',
                   dropout=0.1, dtype='float32', param_dtype='float32', remat='full', pooling='mean')  # fmt: skip
    bert = TransformerConfig.from_config(section, 99)
    assert (bert.arch, bert.vocab_size, bert.num_layers, bert.remat, bert.dropout) == ('bert', 99, 3, 'full', 0.1)
    assert (bert.pre_norm, bert.positions, bert.layer_norm_epsilon) == (False, 'learned', 1e-12)  # the preset wins
    assert bert.type_vocab_size == 2
    modern = TransformerConfig.from_config(section, 99, arch='encoder', decode=True)
    assert (modern.arch, modern.pre_norm, modern.positions, modern.type_vocab_size) == ('encoder', True, 'rotary', 0)
    assert modern.decode and not bert.decode
    assert modern.attention == 'xla'  # a section without the field (an older run's) keeps the default
    assert hash(bert) == hash(TransformerConfig.from_config(section, 99)) and bert != modern
    with pytest.raises(ValueError, match='arch'):
        TransformerConfig.from_config(dict(section, arch='rnn'), 99)
