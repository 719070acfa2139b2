"""Peak-throughput measurement for MFU (model FLOPs utilisation)."""

import time

import jax
import jax.numpy as jnp


def measure_matmul_peak(n: int = 2048, chain: int = 8, repeats: int = 3, dtype=jnp.float32) -> float:
    """Best FLOP/s of `chain` dependent n x n matmuls in one jitted call on one device.

    Chaining inside one call keeps dispatch overhead out of the number on fast devices.
    """
    a = jax.device_put(jnp.full((n, n), 1.0 / n, dtype), jax.devices()[0])
    run = jax.jit(lambda x: jax.lax.fori_loop(0, chain, lambda _, y: y @ a, x))
    run(a).block_until_ready()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        run(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 * chain / best


def layer_params(config, cross_attention: bool = False) -> int:
    """Parameters of one layer (research/models/layers.py Block; with `cross_attention`, seq2seq's
    DecoderBlock): fused qkv + output projection with biases, [the same for cross-attention,]
    the MLP's two dense layers with biases, and a LayerNorm (scale + bias) per sublayer."""
    d, f = config.d_model, config.mlp_dim
    attention = 4 * d * d + 4 * d
    mlp = 2 * d * f + f + d
    sublayers = 3 if cross_attention else 2
    return (sublayers - 1) * attention + mlp + sublayers * 2 * d


def matmul_params(config) -> int:
    """Parameters of the model without a task head that each token goes through: the layers,
    the LayerNorm outside them (final, or BERT's embedding LayerNorm) and the output projection
    [V, D] of a decoder ('gpt') or encoder-decoder ('seq2seq'; tied or not, it counts once).
    Lookups cost no matmul: position and token-type tables, and a token table that is not
    also the output projection (an encoder's, seq2seq's untied source table) are left out."""
    c = config
    if c.arch == 'seq2seq':  # encoder + its LayerNorm, decoder (cross-attention) + its LayerNorm
        stacks = c.num_layers * (layer_params(c) + layer_params(c, cross_attention=True)) + 2 * 2 * c.d_model
        return stacks + c.vocab_size * c.d_model
    body = c.num_layers * layer_params(c) + 2 * c.d_model
    return body + (c.vocab_size * c.d_model if c.arch == 'gpt' else 0)


def train_flops_per_token(config, seq_len: int, head_params: int = 0) -> float:
    """Training FLOPs per token of the model `config` (a TransformerConfig) on sequences of
    `seq_len`: 6 per matmul parameter (forward + backward; matmul_params + the task's head)
    plus 12 * layers * seq_len * d_model per attention (score and value matmuls): one per
    layer, three per encoder-decoder layer (encoder self-, decoder self- and cross-attention,
    the source taken as long as the target). 'bag' (bag of embeddings): 2 * d_model per token
    (the average) and the head's 6 * head_params once per text, spread over its seq_len tokens."""
    c = config
    if c.arch == 'bag':
        return 2.0 * c.d_model + 6.0 * head_params / seq_len
    flops = 6.0 * (matmul_params(c) + head_params) + 12.0 * c.num_layers * seq_len * c.d_model
    if c.arch == 'seq2seq':
        flops += 2 * 12.0 * c.num_layers * seq_len * c.d_model
    return flops
