"""GPT-style decoder language model (pre-LN, causal) with KV-cache decoding."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from research.models import layers


class Decoder(nn.Module):
    """Tokens [B, T] -> next-token logits [B, T, V] (float32), or with `project=False` the
    final hidden states [B, T, D] and the output table [V, D] (research.losses projects them
    in chunks).

    With `decode=True` the model reads and writes a KV cache ('cache' collection): init it
    with tokens of shape [B, S_max], then call it with [B, 1] tokens, one step at a time.
    """

    vocab_size: int
    num_layers: int
    d_model: int
    num_heads: int
    mlp_dim: int
    max_len: int = 512
    positions: str = 'learned'  # or 'rotary'
    tie_embeddings: bool = True
    dropout: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    remat: str = 'none'  # a layers.REMAT_POLICIES name
    scan_layers: bool = False
    decode: bool = False

    @nn.compact
    def __call__(self, tokens, *, train: bool = False, project: bool = True):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        b, t = tokens.shape
        decode_index = None
        if self.decode:
            index = self.variable('cache', 'index', lambda: jnp.zeros((), jnp.int32))
            decode_index = index.value
            if not self.is_initializing():
                index.value = index.value + t
        start = 0 if decode_index is None else decode_index
        positions = jnp.broadcast_to(start + jnp.arange(t), (b, t))

        embed = layers.Embed(self.vocab_size, self.d_model, name='embed', **kw)
        x = embed(tokens)
        if self.positions == 'learned':
            pos_table = self.param(
                'pos_embedding',
                layers.partitioned(layers.init_normal, (None, 'embed')),
                (self.max_len, self.d_model),
                self.param_dtype,
            )
            # Training reads rows 0..t-1: a slice, whose gradient is a sum over the batch
            # (a gather's would be a scatter-add, slow on CPU). Decoding gathers at the index.
            rows = jnp.take(pos_table, positions, axis=0) if self.decode else pos_table[None, :t]
            x = x + rows.astype(self.dtype)
        x = nn.Dropout(self.dropout)(x, deterministic=not train)
        x = layers.constrain(x, ('batch', 'length', 'embed'))

        block = dict(
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            causal=True,
            use_rotary=self.positions == 'rotary',
            decode=self.decode,
            **kw,
        )
        x = layers.stack(
            x,
            positions,
            train,
            decode_index,
            block=block,
            num_layers=self.num_layers,
            scan=self.scan_layers,
            remat=self.remat,
        )
        x = layers.LayerNorm(name='ln_f', **kw)(x)
        if self.tie_embeddings:
            table = embed.embedding
        else:
            table = self.param(
                'head',
                layers.partitioned(layers.init_normal, ('vocab', 'embed')),
                (self.vocab_size, self.d_model),
                self.param_dtype,
            )
        table = table.astype(self.dtype)
        if not project:
            return x, table
        return jnp.einsum('btd,vd->btv', x, table, preferred_element_type=jnp.float32)

    def output_table(self, params):
        """The [V, D] table the logits are computed with, from the params (tied or 'head')."""
        return params['embed']['embedding'] if self.tie_embeddings else params['head']
