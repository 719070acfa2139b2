"""Autoregressive generation with a KV cache: greedy, temperature and top-k sampling.

One jitted function: the first `prefill` positions (the shortest prompt) go through the
decode-mode model in one call that writes their keys and values to the cache; then a
`lax.fori_loop` feeds position t (cache write at t) and either keeps the prompt's token t+1
(rows with longer prompts) or writes the sampled one. Position t's sample draws from
fold_in(rng, t), so prefilling changes no output.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def sample_logits(logits, rng, temperature: float, top_k: int):
    """logits [B, V] -> token ids [B]; temperature 0 means greedy (argmax)."""
    if temperature == 0.0:  # argmax as two plain reductions: XLA:CPU's (value, index) one was slower
        ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
        top = jnp.max(logits, axis=-1, keepdims=True)
        return jnp.min(jnp.where(logits == top, ids, logits.shape[-1]), axis=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(rng, logits, axis=-1)


@functools.partial(jax.jit, static_argnames=('model', 'prefill', 'temperature', 'top_k'))
def _decode_loop(model, params, table_t, tokens, prompt_lens, rng, prefill, temperature, top_k):
    b, total = tokens.shape
    shapes = jax.eval_shape(model.init, jax.random.key(0), tokens)['cache']
    cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def feed(t, current, tokens, cache):
        """Runs tokens [B, n] at positions t-n+1..t; writes position t+1 unless it is the prompt's."""
        (hidden, _), mutated = model.apply(
            {'params': params, 'cache': cache}, current, project=False, mutable=['cache']
        )
        logits = jnp.einsum(
            'bd,dv->bv', hidden[:, -1], table_t.astype(hidden.dtype), preferred_element_type=jnp.float32
        )
        sampled = sample_logits(logits, jax.random.fold_in(rng, t), temperature, top_k)
        keep_prompt = t + 1 < prompt_lens
        nxt = jnp.where(keep_prompt, jax.lax.dynamic_slice(tokens, (0, t + 1), (b, 1))[:, 0], sampled)
        tokens = jax.lax.dynamic_update_slice(tokens, nxt[:, None].astype(tokens.dtype), (0, t + 1))
        return tokens, mutated['cache']

    tokens, cache = feed(prefill - 1, tokens[:, :prefill], tokens, cache)
    step = lambda t, carry: feed(t, jax.lax.dynamic_slice(carry[0], (0, t), (b, 1)), *carry)
    tokens, _ = jax.lax.fori_loop(prefill, total - 1, step, (tokens, cache))
    return tokens


def generate(
    model,
    params,
    prompts: list,
    max_new_tokens: int,
    rng,
    temperature: float = 0.0,
    top_k: int = 0,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> list:
    """Continues each prompt (a non-empty list of ids) by up to max_new_tokens ids.

    `model` must be built with decode=True. Returns the generated ids per prompt, cut at
    the first `eos_id` (excluded).
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError('every prompt needs at least one token (e.g. start with <bos>)')
    lens = np.array([len(p) for p in prompts], np.int32)
    total = int(lens.max()) + max_new_tokens
    if total > model.max_len:
        raise ValueError(f'prompt + max_new_tokens = {total} exceeds the model max_len {model.max_len}')
    tokens = np.full((len(prompts), total), pad_id, np.int32)
    for i, p in enumerate(prompts):
        tokens[i, : len(p)] = p
    # The output table transposed to [D, V] once, outside the loop: XLA:CPU multiplies a few
    # rows by it 2.4x faster than by the [V, D] table (benchmarks/, docs/design.md).
    table_t = jnp.transpose(model.output_table(params))
    out = np.asarray(
        _decode_loop(
            model,
            params,
            table_t,
            jnp.asarray(tokens),
            jnp.asarray(lens),
            rng,
            int(lens.min()),
            float(temperature),
            int(top_k),
        )
    )
    results = []
    for i, n in enumerate(lens):
        gen = out[i, n : n + max_new_tokens].tolist()
        if eos_id is not None and eos_id in gen:
            gen = gen[: gen.index(eos_id)]
        results.append(gen)
    return results
