"""Encoder-decoder Transformer (pre-LN) for translation, with a KV-cache decoder.

Source [B, S] (padding: `source_mask` False) -> `encode` -> memory [B, S, D]; target inputs
[B, T] -> `run_decoder` -> hidden [B, T, D] (causal self-attention, cross-attention to the memory
where the source is not padding). One token table [V, D] serves source, target and output
(a joint SentencePiece vocabulary), or with share_embeddings=False the target side and the
output get their own. Parameter names and logical axes follow layers.py, so FSDP and tensor
parallelism shard it as they shard the other families.

With `decode=True` the decoder keeps its self-attention KV cache and the projected memory
('cache' collection): init with target inputs of the full decoding length, call `decode`
once with `memory` (it projects and stores the memory's keys and values) and then with
memory=None, one step at a time (`run_decoder`).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import layers


class CrossAttention(nn.Module):
    """Queries from x [B, T, D], keys and values from the memory [B, S, D]; `memory_mask` [B, S]."""

    num_heads: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    dropout: float = 0.0
    decode: bool = False

    @nn.compact
    def __call__(self, x, memory, memory_mask, *, train: bool = False):
        d = x.shape[-1]
        k_dim = d // self.num_heads

        def param(name, shape, names, init=layers.init_normal):
            return self.param(name, layers.partitioned(init, names), shape, self.param_dtype).astype(self.dtype)

        q = jnp.einsum('btd,dhk->bthk', x, param('q', (d, self.num_heads, k_dim), ('embed', 'heads', 'kv')))
        q = (q + param('q_bias', (self.num_heads, k_dim), ('heads', 'kv'), nn.initializers.zeros)) * k_dim**-0.5
        w = param('kv', (d, 2, self.num_heads, k_dim), ('embed', None, 'heads', 'kv'))
        b = param('kv_bias', (2, self.num_heads, k_dim), (None, 'heads', 'kv'), nn.initializers.zeros)
        project = lambda m: jnp.einsum('bsd,dnhk->bsnhk', m, w) + b  # noqa: E731
        if self.decode:  # the memory is projected once, by the call that passes it
            kv = self.variable('cache', 'memory_kv', lambda: project(memory))
            if memory is not None and not self.is_initializing():
                kv.value = project(memory)
            kv = kv.value
        else:
            kv = project(memory)
        logits = jnp.einsum('bthk,bshk->bhts', q, kv[:, :, 0], preferred_element_type=jnp.float32)
        logits = jnp.where(memory_mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
        probs = nn.Dropout(self.dropout)(jax.nn.softmax(logits, axis=-1).astype(self.dtype), deterministic=not train)
        out = jnp.einsum('bhts,bshk->bthk', probs, kv[:, :, 1])
        w_out = param('out', (self.num_heads, k_dim, d), ('heads', 'kv', 'embed'))
        return jnp.einsum('bthk,hkd->btd', out, w_out) + param('out_bias', (d,), ('embed',), nn.initializers.zeros)


class DecoderBlock(nn.Module):
    """x + self_attn(ln1(x)) (causal), x + cross_attn(ln2(x), memory), x + mlp(ln3(x))."""

    num_heads: int
    mlp_dim: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    dropout: float = 0.0
    use_rotary: bool = False
    decode: bool = False

    @nn.compact
    def __call__(self, x, memory, memory_mask, positions, train: bool = False, decode_index=None):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        drop = lambda y: nn.Dropout(self.dropout)(y, deterministic=not train)  # noqa: E731
        self_attn = layers.Attention(
            self.num_heads, dropout=self.dropout, causal=True, use_rotary=self.use_rotary, decode=self.decode,
            name='self_attn', **kw,
        )  # fmt: skip
        cross = CrossAttention(self.num_heads, dropout=self.dropout, decode=self.decode, name='cross_attn', **kw)
        x = x + drop(
            self_attn(layers.LayerNorm(name='ln1', **kw)(x), positions, train=train, decode_index=decode_index)
        )
        x = x + drop(cross(layers.LayerNorm(name='ln2', **kw)(x), memory, memory_mask, train=train))
        x = x + drop(
            layers.Mlp(self.mlp_dim, dropout=self.dropout, name='mlp', **kw)(
                layers.LayerNorm(name='ln3', **kw)(x), train=train
            )
        )
        return layers.constrain(x, ('batch', 'length', 'embed'))


class Seq2Seq(nn.Module):
    """(source [B, S], source_mask [B, S], target inputs [B, T]) -> next-token logits [B, T, V]
    (float32), or with project=False (hidden [B, T, D], output table [V, D])."""

    vocab_size: int
    num_layers: int
    d_model: int
    num_heads: int
    mlp_dim: int
    max_len: int = 256
    positions: str = 'learned'  # or 'rotary'
    share_embeddings: bool = True
    dropout: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    decode: bool = False

    def setup(self):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        self.embed = layers.Embed(self.vocab_size, self.d_model, **kw)
        self.target_embed = self.embed if self.share_embeddings else layers.Embed(self.vocab_size, self.d_model, **kw)
        if self.positions == 'learned':
            table = lambda: layers.partitioned(layers.init_normal, (None, 'embed'))  # noqa: E731
            self.source_pos = self.param('source_pos', table(), (self.max_len, self.d_model), self.param_dtype)
            self.target_pos = self.param('target_pos', table(), (self.max_len, self.d_model), self.param_dtype)
        rotary = self.positions == 'rotary'
        self.encoder = [
            layers.Block(self.num_heads, self.mlp_dim, dropout=self.dropout, causal=False, use_rotary=rotary, **kw)
            for _ in range(self.num_layers)
        ]
        self.encoder_ln = layers.LayerNorm(**kw)
        self.decoder = [
            DecoderBlock(
                self.num_heads, self.mlp_dim, dropout=self.dropout, use_rotary=rotary, decode=self.decode, **kw
            )
            for _ in range(self.num_layers)
        ]
        self.decoder_ln = layers.LayerNorm(**kw)
        self.drop = nn.Dropout(self.dropout)
        if self.decode:
            self.index = self.variable('cache', 'index', lambda: jnp.zeros((), jnp.int32))

    def _embed(self, embed, pos_table, tokens, positions, train):
        x = embed(tokens)
        if self.positions == 'learned':
            x = x + jnp.take(pos_table, positions, axis=0).astype(self.dtype)
        return self.drop(x, deterministic=not train)

    def encode(self, source, source_mask, *, train: bool = False):
        """Source [B, S] -> memory [B, S, D]; no position attends to padding."""
        positions = jnp.broadcast_to(jnp.arange(source.shape[1]), source.shape)
        pos_table = self.source_pos if self.positions == 'learned' else None
        x = self._embed(self.embed, pos_table, source, positions, train)
        mask = source_mask[:, None, None, :]
        for block in self.encoder:
            x = block(x, positions, train, None, mask)
        return self.encoder_ln(x)

    def run_decoder(self, targets, memory, source_mask, *, train: bool = False, project: bool = True):
        """Target inputs [B, T] -> logits [B, T, V] (or (hidden, table)); in decode mode at the
        cache's position, with memory=None after the first call."""
        b, t = targets.shape
        start = 0
        if self.decode:
            start = self.index.value
            if not self.is_initializing():
                self.index.value = start + t
        positions = jnp.broadcast_to(start + jnp.arange(t), (b, t))
        pos_table = self.target_pos if self.positions == 'learned' else None
        x = self._embed(self.target_embed, pos_table, targets, positions, train)
        for block in self.decoder:
            x = block(x, memory, source_mask, positions, train, start if self.decode else None)
        x = self.decoder_ln(x)
        table = self.target_embed.embedding.astype(self.dtype)
        if not project:
            return x, table
        return jnp.einsum('btd,vd->btv', x, table, preferred_element_type=jnp.float32)

    def __call__(self, source, source_mask, targets, *, train: bool = False, project: bool = True):
        return self.run_decoder(
            targets, self.encode(source, source_mask, train=train), source_mask, train=train, project=project
        )
