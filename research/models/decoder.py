"""GPT-style decoder language model (pre-LN, causal) with KV-cache decoding."""

import flax.linen as nn
import jax.numpy as jnp

from research.models import layers
from research.models.config import TransformerConfig


class Decoder(nn.Module):
    """Tokens [B, T] -> next-token logits [B, T, V] (float32), or with `project=False` the
    final hidden states [B, T, D] and the output table [V, D] (research.losses projects them
    in chunks). The output table is the token embedding (config.tie_embeddings) or 'head'.

    With config.decode the model reads and writes a KV cache ('cache' collection): init it
    with tokens of shape [B, S_max], then call it with [B, 1] tokens, one step at a time.
    """

    config: TransformerConfig

    @property
    def max_len(self) -> int:
        """The longest sequence it reads (research.sampling checks prompts against it)."""
        return self.config.max_len

    @nn.compact
    def __call__(self, tokens, *, train: bool = False, project: bool = True):
        c = self.config
        b, t = tokens.shape
        decode_index = None
        if c.decode:
            index = self.variable('cache', 'index', lambda: jnp.zeros((), jnp.int32))
            decode_index = index.value
            if not self.is_initializing():
                index.value = index.value + t
        start = 0 if decode_index is None else decode_index
        positions = jnp.broadcast_to(start + jnp.arange(t), (b, t))

        embed = layers.Embed(c, name='embed')
        x = embed(tokens)
        if c.positions == 'learned':
            pos_table = self.param(
                'pos_embedding',
                layers.partitioned(layers.init_normal, (None, 'embed')),
                (c.max_len, c.d_model),
                c.param_dtype,
            )
            # Training reads rows 0..t-1: a slice, whose gradient is a sum over the batch
            # (a gather's would be a scatter-add, slow on CPU). Decoding gathers at the index.
            rows = jnp.take(pos_table, positions, axis=0) if c.decode else pos_table[None, :t]
            x = x + rows.astype(c.dtype)
        x = nn.Dropout(c.dropout)(x, deterministic=not train)
        x = layers.constrain(x, ('batch', 'length', 'embed'))
        x = layers.stack(layers.Block, c, causal=True)(x, train, positions, decode_index)
        x = layers.LayerNorm(c, name='ln_f')(x)
        if c.tie_embeddings:
            table = embed.embedding
        else:
            table = self.param(
                'head',
                layers.partitioned(layers.init_normal, ('vocab', 'embed')),
                (c.vocab_size, c.d_model),
                c.param_dtype,
            )
        table = table.astype(c.dtype)
        if not project:
            return x, table
        return jnp.einsum('btd,vd->btv', x, table, preferred_element_type=jnp.float32)

    def output_table(self, params):
        """The [V, D] table the logits are computed with, from the params (tied or 'head')."""
        return params['embed']['embedding'] if self.config.tie_embeddings else params['head']
