"""Output projection + softmax cross-entropy without the [B, T, V] logits in memory.

Language-model losses spend most of their time on the logits: writing them, the
log-sum-exp passes, the gradient's scatter of the one-hot and its transposed copy for the
table's gradient. `token_losses` projects hidden states in chunks of positions (about
`chunk_tokens` tokens of the batch at a time, so a chunk's logits stay in cache) and, under
differentiation, computes the gradients of hidden states, table and bias in the same pass
(softmax - one-hot, no scatter), so nothing is recomputed. With `sparse=True` (MLM)
positions of weight 0 are moved to the end of their row and chunks holding none of weight
> 0 are skipped: an MLM batch (15% of positions predicted) projects about a quarter of them.
Measured on the 2-core CPU: 129 -> 94 ms for the tiny decoder shape's loss and gradients.

Label smoothing ε trains against (1 - ε) one-hot + ε uniform: per position the objective is
the cross-entropy + ε (target logit - mean logit), and d/d(logits) = softmax - (1 - ε)
one-hot - ε / V. The cross-entropy itself is returned beside it (what perplexity is made of).
"""

import functools

import jax
import jax.numpy as jnp


def token_losses(
    hidden, table, targets, weights, bias=None, chunk_tokens: int = 512, sparse: bool = False, smoothing: float = 0.0
):
    """(objective, cross-entropy, hits): sums over positions of weights · the label-smoothed
    cross-entropy (the only output that is differentiated), · the cross-entropy, and · [target
    logit is the max], for logits `hidden @ table.T + bias`: hidden [B, T, D], table [V, D],
    bias [V] or None, targets and weights [B, T]. Logits are float32 whatever the compute
    dtype. `sparse`: most weights are 0 (MLM): weighted positions are moved first and chunks
    without any are skipped. `smoothing`: ε in [0, 1); 0 makes the objective the cross-entropy."""
    if bias is None:
        bias = jnp.zeros(table.shape[:1], jnp.float32)
    b, t = targets.shape
    # The most positions per chunk that divide T with at most chunk_tokens tokens (>= 1).
    c = max([d for d in range(1, t + 1) if t % d == 0 and d * b <= max(chunk_tokens, b)])
    return _losses(hidden, table, bias, targets, weights.astype(jnp.float32), c, sparse, float(smoothing))


def _chunks(x, c):
    """[B, T, …] -> [T / c, B, c, …]: a scan over position chunks keeps the batch axis (and its
    sharding) intact."""
    b, t = x.shape[:2]
    return x.reshape(b, t // c, c, *x.shape[2:]).swapaxes(0, 1)


def _scan(hidden, table, bias, targets, weights, c, sparse: bool, smoothing: float, grads: bool):
    """Objective, cross-entropy and hit sums; with `grads`, also d(objective)/d(hidden, table, bias)."""
    v, d = table.shape

    def chunk(carry, h, y, w):
        logits = jnp.einsum('bcd,vd->bcv', h, table, preferred_element_type=jnp.float32) + bias.astype(jnp.float32)
        top = jnp.max(logits, axis=-1, keepdims=True)
        e = jnp.exp(logits - top)
        total = jnp.sum(e, axis=-1, keepdims=True)
        target = jnp.take_along_axis(logits, y[..., None], axis=-1)
        ce = jnp.sum((jnp.log(total) + top - target)[..., 0] * w)
        objective = ce
        if smoothing:
            objective = ce + smoothing * jnp.sum((target - jnp.mean(logits, axis=-1, keepdims=True))[..., 0] * w)
        hits = jnp.sum((target >= top)[..., 0] * w)
        sums = (carry[0] + objective, carry[1] + ce, carry[2] + hits)
        if not grads:
            return sums, jnp.zeros((), hidden.dtype)
        one_hot = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 2) == y[..., None]
        g = e / total - one_hot * (1.0 - smoothing) - smoothing / v if smoothing else e / total - one_hot
        g = g * w[..., None]  # d objective / d logits
        dh = jnp.einsum('bcv,vd->bcd', g.astype(table.dtype), table, preferred_element_type=jnp.float32)
        # [D, V] from g as laid out (no transposed copy of g); transposed once at the end.
        dt = carry[3] + jnp.einsum('bcd,bcv->dv', h, g.astype(h.dtype), preferred_element_type=jnp.float32)
        return sums + (dt, carry[4] + jnp.sum(g, axis=(0, 1))), dh.astype(hidden.dtype)

    def body(carry, xs):
        h, y, w = xs
        # Weighted positions come first in every row (see _losses): a chunk without any is
        # skipped, e.g. 3 of 4 chunks of an MLM batch, where 15% of the positions count.
        if not sparse:
            return chunk(carry, h, y, w)
        skip = lambda carry: (carry, jnp.zeros(h.shape if grads else (), hidden.dtype))
        return jax.lax.cond(jnp.any(w > 0), lambda carry: chunk(carry, h, y, w), skip, carry)

    zero = jnp.zeros((), jnp.float32)
    init = (zero, zero, zero) + ((jnp.zeros((d, v), jnp.float32), jnp.zeros((v,), jnp.float32)) if grads else ())
    return jax.lax.scan(body, init, (_chunks(hidden, c), _chunks(targets, c), _chunks(weights, c)))


def _weighted_first(weights, sparse: bool):
    """(order, inverse) along T: each row's positions with weight > 0 first, stably (None, None:
    as they are)."""
    if not sparse:
        return None, None
    order = jnp.argsort(weights <= 0, axis=1, stable=True)
    return order, jnp.argsort(order, axis=1)


def _take(x, order):
    return x if order is None else jnp.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _losses(hidden, table, bias, targets, weights, c, sparse, smoothing):
    order, _ = _weighted_first(weights, sparse)
    h, y, w = _take(hidden, order), _take(targets, order), _take(weights, order)
    return _scan(h, table, bias, y, w, c, sparse, smoothing, False)[0]


def _losses_fwd(hidden, table, bias, targets, weights, c, sparse, smoothing):
    order, inverse = _weighted_first(weights, sparse)
    h, y, w = _take(hidden, order), _take(targets, order), _take(weights, order)
    sums, dh = _scan(h, table, bias, y, w, c, sparse, smoothing, True)
    objective, ce, hits, dt, db = sums
    b, t = targets.shape
    dh = _take(dh.swapaxes(0, 1).reshape(b, t, -1), inverse)
    return (objective, ce, hits), (dh, dt.T.astype(table.dtype), db.astype(bias.dtype))


def _losses_bwd(c, sparse, smoothing, res, cotangents):
    dh, dt, db = res
    g = cotangents[0]  # the cross-entropy and hit count are metrics: not differentiated
    return dh * g.astype(dh.dtype), dt * g.astype(dt.dtype), db * g.astype(db.dtype), None, None


_losses.defvjp(_losses_fwd, _losses_bwd)
