"""Encoder-decoder Transformer (pre-LN) for translation, with a KV-cache decoder.

Source [B, S] (padding: `source_mask` False) -> `encode` -> memory [B, S, D]; target inputs
[B, T] -> `run_decoder` -> hidden [B, T, D] (causal self-attention, cross-attention to the memory
where the source is not padding). One token table [V, D] serves source, target and output
(a joint SentencePiece vocabulary), or with config.tie_embeddings=False the target side and
the output get their own. Parameter names and logical axes follow layers.py, so FSDP and tensor
parallelism shard it as they shard the other families.

With config.decode the decoder keeps its self-attention KV cache and the projected memory
('cache' collection): init with target inputs of the full decoding length, call `decode`
once with `memory` (it projects and stores the memory's keys and values) and then with
memory=None, one step at a time (`run_decoder`).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import layers
from research.models.config import TransformerConfig


class CrossAttention(nn.Module):
    """Queries from x [B, T, D], keys and values from the memory [B, S, D]; `memory_mask` [B, S]."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, memory, memory_mask, *, train: bool = False):
        c = self.config
        d = x.shape[-1]
        k_dim = d // c.num_heads

        def param(name, shape, names, init=layers.init_normal):
            return self.param(name, layers.partitioned(init, names), shape, c.param_dtype).astype(c.dtype)

        q = jnp.einsum('btd,dhk->bthk', x, param('q', (d, c.num_heads, k_dim), ('embed', 'heads', 'kv')))
        q = (q + param('q_bias', (c.num_heads, k_dim), ('heads', 'kv'), nn.initializers.zeros)) * k_dim**-0.5
        w = param('kv', (d, 2, c.num_heads, k_dim), ('embed', None, 'heads', 'kv'))
        b = param('kv_bias', (2, c.num_heads, k_dim), (None, 'heads', 'kv'), nn.initializers.zeros)
        project = lambda m: jnp.einsum('bsd,dnhk->bsnhk', m, w) + b  # noqa: E731
        if c.decode:  # the memory is projected once, by the call that passes it
            kv = self.variable('cache', 'memory_kv', lambda: project(memory))
            if memory is not None and not self.is_initializing():
                kv.value = project(memory)
            kv = kv.value
        else:
            kv = project(memory)
        logits = jnp.einsum('bthk,bshk->bhts', q, kv[:, :, 0], preferred_element_type=jnp.float32)
        logits = jnp.where(memory_mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
        probs = nn.Dropout(c.dropout)(jax.nn.softmax(logits, axis=-1).astype(c.dtype), deterministic=not train)
        out = jnp.einsum('bhts,bshk->bthk', probs, kv[:, :, 1])
        w_out = param('out', (c.num_heads, k_dim, d), ('heads', 'kv', 'embed'))
        return jnp.einsum('bthk,hkd->btd', out, w_out) + param('out_bias', (d,), ('embed',), nn.initializers.zeros)


class DecoderBlock(nn.Module):
    """x + self_attn(ln1(x)) (causal), x + cross_attn(ln2(x), memory), x + mlp(ln3(x)).

    Called as a layers.stack layer: x, train, then the arguments every layer shares."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, train: bool = False, positions=None, decode_index=None, memory=None, memory_mask=None):
        c = self.config
        drop = lambda y: nn.Dropout(c.dropout)(y, deterministic=not train)  # noqa: E731
        self_attn = layers.Attention(c, causal=True, name='self_attn')
        cross = CrossAttention(c, name='cross_attn')
        x = x + drop(self_attn(layers.LayerNorm(c, name='ln1')(x), positions, train=train, decode_index=decode_index))
        x = x + drop(cross(layers.LayerNorm(c, name='ln2')(x), memory, memory_mask, train=train))
        x = x + drop(layers.Mlp(c, name='mlp')(layers.LayerNorm(c, name='ln3')(x), train=train))
        return layers.constrain(x, ('batch', 'length', 'embed'))


class Seq2Seq(nn.Module):
    """(source [B, S], source_mask [B, S], target inputs [B, T]) -> next-token logits [B, T, V]
    (float32), or with project=False (hidden [B, T, D], output table [V, D]).

    The encoder's and the decoder's layers are layers.stack stacks named 'encoder' and
    'decoder' (encoder_0 …, decoder_0 … unrolled; encoders/encoder, decoders/decoder scanned),
    so config.scan_layers and config.remat apply to both."""

    config: TransformerConfig

    def setup(self):
        c = self.config
        self.embed = layers.Embed(c)
        self.target_embed = self.embed if c.tie_embeddings else layers.Embed(c)
        if c.positions == 'learned':
            table = lambda: layers.partitioned(layers.init_normal, (None, 'embed'))  # noqa: E731
            self.source_pos = self.param('source_pos', table(), (c.max_len, c.d_model), c.param_dtype)
            self.target_pos = self.param('target_pos', table(), (c.max_len, c.d_model), c.param_dtype)
        # The encoder never decodes: it runs once per source, before the decoder's first step.
        self.encoder = layers.stack(layers.Block, c.replace(decode=False), name='encoder', causal=False)
        self.encoder_ln = layers.LayerNorm(c)
        self.decoder = layers.stack(DecoderBlock, c, name='decoder')
        self.decoder_ln = layers.LayerNorm(c)
        self.drop = nn.Dropout(c.dropout)
        if c.decode:
            self.index = self.variable('cache', 'index', lambda: jnp.zeros((), jnp.int32))

    def _embed(self, embed, pos_table, tokens, positions, train):
        x = embed(tokens)
        if self.config.positions == 'learned':
            x = x + jnp.take(pos_table, positions, axis=0).astype(self.config.dtype)
        return self.drop(x, deterministic=not train)

    def encode(self, source, source_mask, *, train: bool = False):
        """Source [B, S] -> memory [B, S, D]; no position attends to padding."""
        positions = jnp.broadcast_to(jnp.arange(source.shape[1]), source.shape)
        pos_table = self.source_pos if self.config.positions == 'learned' else None
        x = self._embed(self.embed, pos_table, source, positions, train)
        x = self.encoder(x, train, positions, None, source_mask[:, None, None, :])
        return self.encoder_ln(x)

    def run_decoder(self, targets, memory, source_mask, *, train: bool = False, project: bool = True):
        """Target inputs [B, T] -> logits [B, T, V] (or (hidden, table)); in decode mode at the
        cache's position, with memory=None after the first call."""
        c = self.config
        b, t = targets.shape
        start = 0
        if c.decode:
            start = self.index.value
            if not self.is_initializing():
                self.index.value = start + t
        positions = jnp.broadcast_to(start + jnp.arange(t), (b, t))
        pos_table = self.target_pos if c.positions == 'learned' else None
        x = self._embed(self.target_embed, pos_table, targets, positions, train)
        x = self.decoder(x, train, positions, start if c.decode else None, memory, source_mask)
        x = self.decoder_ln(x)
        table = self.target_embed.embedding.astype(c.dtype)
        if not project:
            return x, table
        return jnp.einsum('btd,vd->btv', x, table, preferred_element_type=jnp.float32)

    def __call__(self, source, source_mask, targets, *, train: bool = False, project: bool = True):
        return self.run_decoder(
            targets, self.encode(source, source_mask, train=train), source_mask, train=train, project=project
        )
