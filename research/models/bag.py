"""The classic bag-of-embeddings text classifier: the floor of every results table.

embedding -> average over the real (unmasked) tokens -> dropout -> dense to classes.
"""

import flax.linen as nn
import jax.numpy as jnp

from research.models import layers
from research.models.config import TransformerConfig


class BagOfEmbeddings(nn.Module):
    """Reads config.vocab_size, d_model, dropout and the dtypes; the head computes in float32."""

    config: TransformerConfig
    num_classes: int

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        """tokens, mask [B, T] -> logits [B, C] (float32)."""
        c = self.config
        x = layers.Embed(c, name='embed')(tokens)
        m = mask[..., None].astype(x.dtype)
        pooled = (x * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
        pooled = nn.Dropout(c.dropout)(pooled, deterministic=not train)
        return nn.Dense(
            self.num_classes,
            dtype=jnp.float32,
            param_dtype=c.param_dtype,
            name='head',
            kernel_init=layers.partitioned(layers.init_normal, ('embed', 'classes')),
            bias_init=layers.partitioned(nn.initializers.zeros, ('classes',)),
        )(pooled)
