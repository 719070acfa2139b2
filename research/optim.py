"""Optax optimizers and learning-rate schedules from the config's `optim` section.

Fine-tuning knobs: `freeze` (a regex over parameter paths like 'encoder/block_0/attn/qkv';
matching parameters get zero updates — a linear probe is `freeze='^(?!head/)'`) and
`layer_decay` (layer-wise learning-rate decay: layer i of L is scaled by decay**(L - i),
embeddings by decay**(L + 1), everything else by 1). Scanned layers ('blocks/…', the layer
on the leading axis) get the same treatment, layer by layer. Which parameter is which comes
from research/models/paths.py.
"""

import re

import jax
import jax.numpy as jnp
import optax

from research.models import paths
from research.schema import ConfigError, need


def param_paths(params):
    """The tree of 'a/b/c' path strings of a parameter tree."""
    return jax.tree_util.tree_map_with_path(lambda path, _: paths.path_string(path), params)


def scanned(path: str) -> bool:
    """Whether a parameter path is in scanned layers (its leading axis is the layer)."""
    return paths.role(path)[0] == 'layers'


def _layer_scale(path: str, num_layers: int, decay: float, ndim: int):
    role, layer = paths.role(path)
    if role == 'layer':
        return decay ** (num_layers - layer)
    if role == 'layers':  # one factor per layer, along the stacked axis
        return (decay ** (num_layers - jnp.arange(num_layers))).reshape((num_layers,) + (1,) * (ndim - 1))
    if role == 'embedding':
        return decay ** (num_layers + 1)
    return 1.0


def check(o):
    """The config.optim values types cannot check (raises a one-line ConfigError)."""
    need(o.lr > 0, f'config.optim.lr={o.lr} must be > 0')
    try:
        re.compile(o.freeze)
    except re.error as e:
        raise ConfigError(f'config.optim.freeze={o.freeze!r} is not a valid regex ({e})') from None
    need(o.name in ('adamw', 'sgd'), f"config.optim.name={o.name!r}: use 'adamw' or 'sgd'")
    need(
        o.schedule in ('cosine', 'linear', 'constant'),
        f"config.optim.schedule={o.schedule!r}: use 'cosine', 'linear' or 'constant'",
    )


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
    """Weight decay on matrices only: not on biases, norm scales (or other 1-d params; in
    scanned blocks, the layer axis does not count)."""
    return jax.tree.map(lambda p, path: p.ndim - scanned(path) >= 2, params, param_paths(params))


def make_optimizer(o, total_steps: int, num_layers: int = 0):
    """Returns (optax transform, schedule): clipping, AdamW or SGD, layer decay, freezing."""
    schedule = make_schedule(o, total_steps)
    if o.name == 'adamw':
        opt = optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, mask=_decay_mask)
    else:
        opt = optax.chain(
            optax.add_decayed_weights(o.weight_decay, mask=_decay_mask),
            optax.sgd(schedule, momentum=o.momentum or None),
        )
    if o.clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(o.clip_norm), opt)
    if o.layer_decay != 1.0:
        opt = optax.chain(opt, _layer_decay(num_layers, o.layer_decay))
    if o.freeze:
        pattern = re.compile(o.freeze)
        labels = lambda params: jax.tree.map(lambda p: 'frozen' if pattern.search(p) else 'train', param_paths(params))
        opt = optax.multi_transform({'train': opt, 'frozen': optax.set_to_zero()}, labels)
    return opt, schedule


def _layer_decay(num_layers: int, decay: float):
    """Layer-wise lr decay: scales each update by its layer's factor (from its path)."""

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        factors = jax.tree.map(lambda u, p: _layer_scale(p, num_layers, decay, u.ndim), updates, param_paths(updates))
        return jax.tree.map(lambda u, f: u * f, updates, factors), state

    return optax.GradientTransformation(init, update)
