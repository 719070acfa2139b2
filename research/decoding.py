"""Greedy and beam-search decoding for the encoder-decoder (research.models.seq2seq).

The source is encoded once; the decoder runs on its KV cache, one token per step, in one
jitted while-loop over the batch. Row r may produce at most
max_lengths[r] = min(floor(a * source_length_r + b), max_len) tokens, <eos> included; a row
is finished at its <eos> (later positions are <pad> = 0). Beam search keeps `beam` live
hypotheses per row ranked by log-probability and the `beam` best finished ones ranked by
the GNMT length-penalised score log p / ((5 + length) / 6) ** alpha (a hypothesis finishes
when <eos> is among the `beam` best extensions, so beam 1 with alpha 0 is greedy); it stops
when no live hypothesis can still beat the worst kept finished one.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from research.models import paths
from research.models.seq2seq import Seq2Seq

NEG = -1e9  # the score of an empty slot


def length_penalty(length, alpha: float):
    """GNMT's ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def max_lengths(source_mask, a: float, b: int, max_len: int) -> jnp.ndarray:
    """Per-row length limits [B] from the source lengths."""
    n = source_mask.sum(-1)
    return jnp.minimum(jnp.floor(a * n + b).astype(jnp.int32), max_len)


def _start(model: Seq2Seq, params, source, source_mask, rows: int, max_len: int, bos_id: int):
    """(log-probs [rows, V] of the first token, cache) after encoding once and feeding <bos>;
    rows = B * beams (each source row repeated)."""
    encoder = model.clone(config=model.config.replace(decode=False))
    memory = encoder.apply({'params': params}, source, source_mask, method=Seq2Seq.encode)
    repeat = rows // source.shape[0]
    memory, source_mask = jnp.repeat(memory, repeat, 0), jnp.repeat(source_mask, repeat, 0)
    targets = jnp.zeros((rows, max_len), jnp.int32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.repeat(source, repeat, 0), source_mask, targets)
    cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes['cache'])
    return _step(model, params, cache, jnp.full((rows,), bos_id, jnp.int32), memory, source_mask) + (source_mask,)


def _reorder(cache, rows):
    """The cache of the hypotheses `rows` [B * k]: the batch axis is the first, or the second
    in a scanned stack's cache (the layers lead; research/models/paths.py)."""

    def take(path, c):
        axis = 1 if paths.role(paths.path_string(path))[0] == 'layers' else 0
        return jnp.take(c, rows, axis=axis) if c.ndim > axis else c  # the position index is a scalar

    return jax.tree_util.tree_map_with_path(take, cache)


def _step(model, params, cache, tokens, memory, source_mask):
    logits, mutated = model.apply(
        {'params': params, 'cache': cache},
        tokens[:, None],
        memory,
        source_mask,
        method=Seq2Seq.run_decoder,
        mutable=['cache'],
    )
    return jax.nn.log_softmax(logits[:, -1].astype(jnp.float32)), mutated['cache']


@functools.partial(jax.jit, static_argnames=('model', 'max_len', 'bos_id', 'eos_id'))
def greedy(model: Seq2Seq, params, source, source_mask, limits, *, max_len: int, bos_id: int, eos_id: int):
    """Tokens [B, max_len]: each row's most likely next token until <eos> or its limit."""
    b = source.shape[0]
    logp, cache, mask = _start(model, params, source, source_mask, b, max_len, bos_id)
    token = jnp.argmax(logp, -1).astype(jnp.int32)
    out = jnp.zeros((b, max_len), jnp.int32).at[:, 0].set(token)
    done = (token == eos_id) | (limits <= 1)

    def body(carry):
        i, out, done, cache = carry
        logp, cache = _step(model, params, cache, out[:, i - 1], None, mask)
        token = jnp.where(done, 0, jnp.argmax(logp, -1)).astype(jnp.int32)
        done = done | (token == eos_id) | (i + 1 >= limits)
        return i + 1, out.at[:, i].set(token), done, cache

    cond = lambda c: (c[0] < max_len) & ~jnp.all(c[2])  # noqa: E731
    return jax.lax.while_loop(cond, body, (1, out, done, cache))[1]


@functools.partial(jax.jit, static_argnames=('model', 'beam', 'max_len', 'bos_id', 'eos_id'))
def beam_search(
    model: Seq2Seq,
    params,
    source,
    source_mask,
    limits,
    *,
    beam: int,
    alpha: float,
    max_len: int,
    bos_id: int,
    eos_id: int,
):
    """(tokens [B, beam, max_len], scores [B, beam]): the finished hypotheses of each row, best
    (highest length-penalised score) first."""
    b, k = source.shape[0], beam
    logp, cache, mask = _start(model, params, source, source_mask, b * k, max_len, bos_id)
    vocab = logp.shape[-1]
    alive = jnp.zeros((b, k, max_len), jnp.int32)
    alive_logp = jnp.tile(jnp.array([0.0] + [NEG] * (k - 1)), (b, 1))  # one live hypothesis to start
    finished, finished_score = jnp.zeros((b, k, max_len), jnp.int32), jnp.full((b, k), NEG)

    def grow(i, logp, alive, alive_logp, finished, finished_score, cache):
        """Extends the live hypotheses by one token at position i (log-probs [B * k, V])."""
        candidates = (alive_logp[:, :, None] + logp.reshape(b, k, vocab)).reshape(b, k * vocab)
        top_logp, top = jax.lax.top_k(candidates, 2 * k)  # enough that k of them do not end here
        parent, token = top // vocab, (top % vocab).astype(jnp.int32)
        seqs = jnp.take_along_axis(alive, parent[:, :, None], 1).at[:, :, i].set(token)
        ends = (token == eos_id) | (i + 1 >= limits[:, None])
        # A hypothesis ends only among the k best candidates (so beam 1 is greedy); a worse
        # one ending here is dropped, as it cannot stay live either.
        ranked = jnp.arange(2 * k) < k
        score = jnp.where(ends & ranked & (top_logp > NEG / 2), top_logp / length_penalty(i + 1, alpha), NEG)
        pool_seqs = jnp.concatenate([finished, seqs], 1)
        finished_score, best = jax.lax.top_k(jnp.concatenate([finished_score, score], 1), k)
        finished = jnp.take_along_axis(pool_seqs, best[:, :, None], 1)
        alive_logp, keep = jax.lax.top_k(jnp.where(ends, NEG, top_logp), k)
        alive = jnp.take_along_axis(seqs, keep[:, :, None], 1)
        rows = (jnp.arange(b)[:, None] * k + jnp.take_along_axis(parent, keep, 1)).reshape(-1)
        cache = _reorder(cache, rows)
        return alive, alive_logp, finished, finished_score, cache

    def done(i, alive_logp, finished_score):
        """Per row: at its limit, or no live hypothesis can beat the worst kept finished one."""
        best_possible = alive_logp.max(1) / length_penalty(limits, alpha)  # log p only falls
        return (i >= limits) | (finished_score.min(1) >= best_possible)

    state = grow(0, logp, alive, alive_logp, finished, finished_score, cache)

    def body(carry):
        i, alive, alive_logp, finished, finished_score, cache = carry
        logp, cache = _step(model, params, cache, alive[:, :, i - 1].reshape(-1), None, mask)
        return (i + 1,) + grow(i, logp, alive, alive_logp, finished, finished_score, cache)

    cond = lambda c: (c[0] < max_len) & ~jnp.all(done(c[0], c[2], c[4]))  # noqa: E731
    _, _, _, finished, finished_score, _ = jax.lax.while_loop(cond, body, (1,) + state)
    return finished, finished_score


def translate(
    model: Seq2Seq,
    params,
    source,
    source_mask,
    *,
    beam: int,
    alpha: float,
    a: float,
    b: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
):
    """The best translation's tokens [B, max_len]: greedy for beam 1, else beam search's first
    hypothesis; row r gets at most a * source_length_r + b tokens."""
    limits = max_lengths(source_mask, a, b, max_len)
    ids = dict(max_len=max_len, bos_id=bos_id, eos_id=eos_id)
    if beam == 1:
        return greedy(model, params, source, source_mask, limits, **ids)
    return beam_search(model, params, source, source_mask, limits, beam=beam, alpha=alpha, **ids)[0][:, 0]


def strip(tokens, eos_id: int) -> list:
    """[B, L] (or [L]) ids -> lists cut before the first <eos> (padding dropped)."""
    rows = np.asarray(tokens).reshape(-1, np.shape(tokens)[-1]).tolist()
    out = [r[: r.index(eos_id)] if eos_id in r else [t for t in r if t] for r in rows]
    return out if np.ndim(tokens) > 1 else out[0]
