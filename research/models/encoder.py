"""BERT-style bidirectional encoder and its task heads (MLM, sequence/token cls, span QA).

Two flavours share one module, chosen by the TransformerConfig (research/models/config.py,
presets 'bert' and 'encoder'): `pre_norm=False, positions='learned'` is the original BERT
layout (embedding LayerNorm, post-LN blocks, token types; Hugging Face checkpoints load into
it, see research.convert.hf_bert); `pre_norm=True, positions='rotary'` is the modern option
(pre-LN blocks, rotary positions, a final LayerNorm). Heads are separate modules applied to
the encoder's hidden states, so a task picks its head without touching the encoder.
"""

import flax.linen as nn
import jax.numpy as jnp

from research.models import layers
from research.models.config import ARCHS, TransformerConfig

NEG_INF = -1e9  # masks logits without producing inf in a float32 loss


def dense(config: TransformerConfig, features, names, name):
    """A Dense layer in config's dtypes whose kernel/bias carry logical axis `names` (kernel) / names[-1]."""
    return nn.Dense(
        features,
        dtype=config.dtype,
        param_dtype=config.param_dtype,
        name=name,
        kernel_init=layers.partitioned(layers.init_normal, names),
        bias_init=layers.partitioned(nn.initializers.zeros, names[-1:]),
    )


class Encoder(nn.Module):
    """Tokens [B, T] -> hidden states [B, T, D] (and pooled [B, D] when `pooler`).

    `input_mask` [B, T] (1/True = real token) masks padded keys; `token_types` [B, T]
    index the segment embedding (zeros when omitted; config.type_vocab_size=0 disables it).
    """

    config: TransformerConfig
    pooler: bool = False  # BERT pooler: tanh(dense(h[:, 0]))

    @nn.compact
    def __call__(self, tokens, input_mask=None, token_types=None, *, train: bool = False):
        c = self.config
        b, t = tokens.shape
        positions = jnp.broadcast_to(jnp.arange(t), (b, t))

        x = layers.Embed(c, name='embed')(tokens)
        if c.positions == 'learned':
            x = x + self._table('pos_embedding', c.max_len, positions)
        if c.type_vocab_size:
            types = jnp.zeros_like(tokens) if token_types is None else token_types
            x = x + self._table('type_embedding', c.type_vocab_size, types)
        if not c.pre_norm:
            x = layers.LayerNorm(c, name='embed_ln')(x)
        x = nn.Dropout(c.dropout)(x, deterministic=not train)
        x = layers.constrain(x, ('batch', 'length', 'embed'))

        mask = None if input_mask is None else input_mask.astype(bool)[:, None, None, :]
        x = layers.stack(layers.Block, c, causal=False)(x, train, positions, None, mask)
        if c.pre_norm:
            x = layers.LayerNorm(c, name='ln_f')(x)
        if not self.pooler:
            return x
        pooled = jnp.tanh(dense(c, c.d_model, ('embed', 'embed_out'), 'pooler')(x[:, 0]))
        return x, pooled

    def _table(self, name, rows, ids):
        """Looks `ids` up in a learned [rows, D] table (positions or token types)."""
        c = self.config
        table = self.param(
            name, layers.partitioned(layers.init_normal, (None, 'embed')), (rows, c.d_model), c.param_dtype
        )
        return jnp.take(table, ids, axis=0).astype(c.dtype)

    def embedding_table(self):
        """The token embedding [V, D] (after the encoder ran), to tie an MlmHead to it."""
        return nn.unbox(self.variables['params']['embed']['embedding'])


class MlmHead(nn.Module):
    """Masked-LM head: dense + activation + LN, then the tied token embedding + a bias.

    Call with hidden [B, T, D] and the encoder's embedding table [V, D] (e.g.
    `params['embed']['embedding']`, or `encoder.embedding_table()` inside a parent module);
    returns float32 logits [B, T, V], or with `project=False` the transformed hidden states,
    the table and the bias (research.losses projects them in chunks).
    """

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, embedding, project: bool = True):
        c = self.config
        vocab_size, d = embedding.shape
        h = dense(c, d, ('embed', 'embed_out'), 'transform')(x)
        h = layers.ACTIVATIONS[c.activation](h)
        h = layers.LayerNorm(c, name='ln')(h)
        table = embedding.astype(c.dtype)
        bias = self.param('bias', layers.partitioned(nn.initializers.zeros, ('vocab',)), (vocab_size,), c.param_dtype)
        if not project:
            return h, table, bias
        return jnp.einsum('...d,vd->...v', h, table, preferred_element_type=jnp.float32) + bias.astype(jnp.float32)


def pool(hidden, input_mask=None, mode: str = 'cls'):
    """hidden [B, T, D] -> [B, D]: the first ([CLS]) token, or the mean over real tokens."""
    if mode == 'cls':
        return hidden[:, 0]
    if mode != 'mean':
        raise ValueError(f"pooling must be 'cls' or 'mean', got {mode!r}")
    if input_mask is None:
        return hidden.mean(axis=1)
    weights = input_mask.astype(jnp.float32)[..., None]
    total = (hidden.astype(jnp.float32) * weights).sum(axis=1)
    return (total / jnp.maximum(weights.sum(axis=1), 1.0)).astype(hidden.dtype)


class SequenceClassifier(nn.Module):
    """Pooled hidden state -> dropout -> dense -> float32 logits [B, num_classes].

    Takes hidden [B, T, D] (pooled by `pooling`, over `input_mask` for 'mean') or an
    already pooled [B, D] (e.g. the encoder's BERT pooler output).
    """

    config: TransformerConfig
    num_classes: int
    pooling: str = 'cls'  # or 'mean'

    @nn.compact
    def __call__(self, hidden, input_mask=None, *, train: bool = False):
        x = hidden if hidden.ndim == 2 else pool(hidden, input_mask, self.pooling)
        x = nn.Dropout(self.config.dropout)(x, deterministic=not train)
        out = dense(self.config, self.num_classes, ('embed', 'classes'), 'classifier')(x)
        return out.astype(jnp.float32)


class TokenClassifier(nn.Module):
    """Per-token dropout -> dense: hidden [B, T, D] -> float32 logits [B, T, num_classes]."""

    config: TransformerConfig
    num_classes: int

    @nn.compact
    def __call__(self, hidden, *, train: bool = False):
        x = nn.Dropout(self.config.dropout)(hidden, deterministic=not train)
        out = dense(self.config, self.num_classes, ('embed', 'classes'), 'classifier')(x)
        return out.astype(jnp.float32)


class SpanHead(nn.Module):
    """Extractive QA: hidden [B, T, D] -> (start, end) float32 logits [B, T] each.

    Positions where `input_mask` is 0 get NEG_INF, so a softmax over T ignores padding.
    """

    config: TransformerConfig

    @nn.compact
    def __call__(self, hidden, input_mask=None):
        logits = dense(self.config, 2, ('embed', 'classes'), 'span')(hidden)
        logits = logits.astype(jnp.float32)
        if input_mask is not None:
            logits = jnp.where(input_mask.astype(bool)[..., None], logits, NEG_INF)
        return logits[..., 0], logits[..., 1]


HF_ACTIVATIONS = {'gelu': 'gelu_exact', 'gelu_new': 'gelu', 'gelu_pytorch_tanh': 'gelu'}


def bert_config(hf_config: dict, **overrides) -> TransformerConfig:
    """The TransformerConfig of a Hugging Face BERT `config.json` dict: the 'bert' preset (post-LN,
    learned positions) at the checkpoint's dims, epsilon and activation; `overrides` (e.g.
    dtype, remat) on top. Whether it has a pooler is the Encoder's `pooler` (BertModel
    checkpoints have `pooler.dense.*`; MLM-only ones do not)."""
    act = hf_config.get('hidden_act', 'gelu')
    if act not in HF_ACTIVATIONS:
        raise ValueError(f'unsupported hidden_act {act!r}; supported: {sorted(HF_ACTIVATIONS)}')
    pos_type = hf_config.get('position_embedding_type', 'absolute')
    if pos_type != 'absolute':
        raise ValueError(f"unsupported position_embedding_type {pos_type!r}; only 'absolute'")
    checkpoint = dict(
        vocab_size=hf_config['vocab_size'],
        num_layers=hf_config['num_hidden_layers'],
        d_model=hf_config['hidden_size'],
        num_heads=hf_config['num_attention_heads'],
        mlp_dim=hf_config['intermediate_size'],
        max_len=hf_config['max_position_embeddings'],
        type_vocab_size=hf_config.get('type_vocab_size', 2),
        layer_norm_epsilon=hf_config.get('layer_norm_eps', 1e-12),
        activation=HF_ACTIVATIONS[act],
    )
    return TransformerConfig(**{**ARCHS['bert'], 'arch': 'bert', **checkpoint, **overrides})


class MaskedLM(nn.Module):
    """Encoder + MLM head tied to its token embedding (params: 'encoder', 'mlm')."""

    encoder: nn.Module

    @nn.compact
    def __call__(self, tokens, input_mask=None, *, train: bool = False, project: bool = True):
        hidden = self.encoder(tokens, input_mask, train=train)
        return MlmHead(self.encoder.config, name='mlm')(hidden, self.encoder.embedding_table(), project)
