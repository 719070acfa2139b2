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


def transformer_train_flops_per_token(matmul_params: int, model_config, seq_len: int) -> float:
    """Training FLOPs per token: 6 per matmul parameter (forward + backward) plus
    12 * layers * seq_len * d_model for the attention score and value matmuls."""
    m = model_config
    return 6.0 * matmul_params + 12.0 * m.num_layers * seq_len * m.d_model
