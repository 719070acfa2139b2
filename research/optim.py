"""Optax optimizers and learning-rate schedules from the config's `optim` section."""

import jax
import optax


def make_schedule(o, total_steps: int) -> optax.Schedule:
    """Linear warmup to `lr`, then cosine/linear decay to `lr * end_lr_ratio`, or constant."""
    warmup = min(o.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    end = o.lr * o.end_lr_ratio
    if o.schedule == 'cosine':
        after = optax.cosine_decay_schedule(o.lr, decay_steps, alpha=o.end_lr_ratio)
    elif o.schedule == 'linear':
        after = optax.linear_schedule(o.lr, end, decay_steps)
    else:
        after = optax.constant_schedule(o.lr)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, o.lr, warmup), after], [warmup])


def _decay_mask(params):
    """Weight decay on matrices only: not on biases, norm scales (or other 1-d params)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(o, total_steps: int):
    """Returns (optax transform, schedule): clipping, then AdamW or SGD with momentum."""
    schedule = make_schedule(o, total_steps)
    if o.name == 'adamw':
        opt = optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                          weight_decay=o.weight_decay, mask=_decay_mask)
    else:
        opt = optax.chain(optax.add_decayed_weights(o.weight_decay, mask=_decay_mask),
                          optax.sgd(schedule, momentum=o.momentum or None))
    if o.clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(o.clip_norm), opt)
    return opt, schedule
