"""Shapes, timing and memory measurement shared by our benchmark workers and the reference ones.

Both sides build the same architecture at a named shape (GPT-2 layout: pre-LN, GELU MLP of
4·d, learned positions, tied embeddings; or BERT: post-LN, token types, MLM head), train it
with the same optimizer (AdamW + clipping from research.optim) on the same random tokens
in float32 with dropout 0, and are timed the same way: compile = lower + compile of the
first step; then warm-up steps; then the median of >= 10 steps, each blocked on.
"""

import statistics
import time

import jax
import numpy as np

# name -> (layers, d_model, heads, seq_len, vocab, batch); MLP 4·d; max_len = seq_len.
SHAPES = {
    'tiny': (2, 128, 4, 128, 8192, 16),
    'small': (4, 256, 4, 256, 16384, 8),
    'medium': (6, 512, 8, 256, 32768, 8),
}
DECODE_SHAPE = 'small'  # decoding: a 32-token prompt + 128 new tokens fit its 256 positions
PROMPT_LEN, NEW_TOKENS = 32, 128
MASK_RATE = 0.15  # MLM: fraction of positions predicted


def dims(shape: str) -> dict:
    layers, d, heads, seq, vocab, batch = SHAPES[shape]
    return dict(layers=layers, d=d, heads=heads, seq=seq, vocab=vocab, batch=batch, mlp=4 * d)


def tokens(shape: str, seed: int = 0):
    """Random training tokens [batch, seq + 1] and MLM prediction weights [batch, seq]."""
    s = dims(shape)
    rng = np.random.default_rng(seed)
    ids = rng.integers(7, s['vocab'], (s['batch'], s['seq'] + 1)).astype(np.int32)
    predict = (rng.random((s['batch'], s['seq'])) < MASK_RATE).astype(np.float32)
    return ids, predict


def prompts(batch: int, vocab: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(7, vocab, (batch, PROMPT_LEN)).astype(np.int32)


def flops_per_token(matmul_params: int, layers: int, seq: int, d: int) -> float:
    """The stated formula (research.flops): 6 per matmul parameter + 12·L·T·D for attention."""
    return 6.0 * matmul_params + 12.0 * layers * seq * d


def compiled_bytes(compiled) -> int:
    """XLA's planned peak for one call: arguments + outputs + temporaries - donated aliases."""
    m = compiled.memory_analysis()
    if m is None:
        return 0
    return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes


def device_peak_bytes() -> int:
    """The allocator's peak on accelerators (0 where the backend keeps no stats, e.g. CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return int(stats.get('peak_bytes_in_use', 0))


def time_train(compile_fn, step_fn, state, warmup: int, steps: int) -> dict:
    """compile_fn() -> compiled step; step_fn(compiled, state) -> state (blocked on)."""
    t = time.perf_counter()
    compiled = compile_fn()
    compile_s = time.perf_counter() - t
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        state = step_fn(compiled, state)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return dict(
        compile_s=compile_s,
        step_s=statistics.median(times),
        memory_bytes=compiled_bytes(compiled),
        device_peak_bytes=device_peak_bytes(),
    )


def time_calls(fn, warmup: int, calls: int) -> dict:
    """First call (trace + compile + run) and the median of `calls` later calls of fn()."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    for _ in range(warmup - 1):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return dict(first_call_s=first, call_s=statistics.median(times))
