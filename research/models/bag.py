"""The classic bag-of-embeddings text classifier: the floor of every results table.

embedding -> average over the real (unmasked) tokens -> dropout -> dense to classes.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from research.models import layers


class BagOfEmbeddings(nn.Module):
    vocab_size: int
    d_model: int
    num_classes: int
    dropout: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        """tokens, mask [B, T] -> logits [B, C] (float32)."""
        x = layers.Embed(self.vocab_size, self.d_model, self.dtype, self.param_dtype, name='embed')(tokens)
        m = mask[..., None].astype(x.dtype)
        pooled = (x * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
        pooled = nn.Dropout(self.dropout)(pooled, deterministic=not train)
        return nn.Dense(
            self.num_classes,
            dtype=jnp.float32,
            param_dtype=self.param_dtype,
            name='head',
            kernel_init=layers.partitioned(layers.init_normal, ('embed', 'classes')),
            bias_init=layers.partitioned(nn.initializers.zeros, ('classes',)),
        )(pooled)
