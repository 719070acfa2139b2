"""Peak-throughput measurement for MFU (model FLOPs utilisation)."""

import time

import jax
import jax.numpy as jnp


def measure_matmul_peak(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
    """Best FLOP/s of an n x n matmul on one device: the denominator of MFU."""
    a = jax.device_put(jnp.ones((n, n), dtype), jax.devices()[0])
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best
