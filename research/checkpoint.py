"""Orbax checkpoints: train state (sharded pytree) + data iterator position (JSON).

Resume order (see train.py): latest step in workdir -> config.resume -> scratch. A step
whose files are damaged (e.g. truncated by a killed process) is reported and skipped in
favour of the previous step instead of failing the run.
"""

import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils


def _item_handlers():
    return {'state': ocp.StandardCheckpointHandler(), 'data': ocp.JsonCheckpointHandler()}


def manager(directory: str, keep: int) -> ocp.CheckpointManager:
    """A CheckpointManager saving asynchronously and keeping the `keep` latest steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=_item_handlers())


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict):
    """Starts an async save of `state` and the data position at `step`."""
    saved = mngr.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state))
    )
    if not saved:  # orbax skips steps <= its latest; that would silently lose this state
        raise CheckpointError(
            f'checkpoint step {step} was not saved in {mngr.directory} (latest there: {mngr.latest_step()})'
        )


class CheckpointError(RuntimeError):
    """No checkpoint in a directory can be restored into the current config's state."""


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
    """Restores the newest readable step as (step, state, data_state), or None if none.

    `abstract_state` holds jax.ShapeDtypeStruct leaves with shardings, so arrays come back
    laid out on the current mesh whatever mesh wrote them. Unreadable newer steps (e.g.
    truncated by a killed process) are renamed `N.unreadable` — kept, but out of the way
    of the saves that will redo them. If no step is readable, nothing is touched and
    CheckpointError says why (usually: the model or optimizer config changed).
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    if steps and (difference := stored_difference(mngr, steps[0], abstract_state)):
        raise CheckpointError(
            f'the checkpoints in {mngr.directory} hold another model or optimizer ({difference}); resume with the '
            f'config they were trained with (config.json beside them), or use a new --workdir'
        )
    bad = []
    for step in steps:
        try:
            restored = mngr.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()),
            )
        except Exception as e:  # orbax raises many types for damaged files
            reason = f'{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ""}'
            logging.warning('checkpoint step %d in %s is unreadable (%s)', step, mngr.directory, reason)
            bad.append((step, reason))
            continue
        if bad:
            _set_aside(mngr, [b for b, _ in bad])
        return step, restored['state'], dict(restored['data'])
    if bad:
        raise CheckpointError(
            f'no checkpoint in {mngr.directory} ({steps}) can be restored for this config; the newest '
            f'fails with {bad[0][1]}. If the model/optimizer config changed, use a new --workdir.'
        )
    return None


def _shapes(tree) -> dict:
    """{'params/decoder/embed/embedding': shape, …} of a state or of its stored metadata."""

    def key(k):
        for attr in ('key', 'name', 'idx'):
            if hasattr(k, attr):
                return str(getattr(k, attr))
        return str(k)

    return {'/'.join(map(key, path)): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def stored_difference(mngr: ocp.CheckpointManager, step: int, abstract_state) -> str:
    """The first parameter or optimizer slot whose stored shape differs from `abstract_state`'s,
    or '' (also when the step's metadata is unreadable: a damaged step, which restoring handles)."""
    try:
        stored = _shapes(mngr.item_metadata(step)['state'])
    except Exception:  # orbax raises many types for damaged files
        return ''
    wanted = _shapes(abstract_state)
    for path in sorted(stored.keys() | wanted.keys(), key=lambda p: (not p.startswith('params/'), p)):
        if stored.get(path) != wanted.get(path):
            return f'{path}: {stored.get(path, "absent")} there vs {wanted.get(path, "absent")} in this config'
    return ''


def _set_aside(mngr: ocp.CheckpointManager, steps):
    if jax.process_index() == 0:
        for step in steps:
            path = os.path.join(str(mngr.directory), str(step))
            os.replace(path, f'{path}.unreadable')
            logging.warning('moved unreadable checkpoint %s to %s.unreadable', path, path)
    multihost_utils.sync_global_devices('wordlab_checkpoint_set_aside')
    mngr.reload()


def load_params(directory: str, step: int | None = None):
    """(step, params) of `step` (default: latest readable) in a checkpoint dir, on one device.

    Works whatever mesh or number of hosts wrote the checkpoint (its metadata gives the
    shapes; the target places every array on this process's first device).
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'no checkpoint directory {directory!r}; train first with research.main')
    mngr = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(create=False),
        item_handlers=_item_handlers(),
    )
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    steps = [step] if step is not None else sorted(mngr.all_steps(), reverse=True)
    for s in steps:
        try:
            meta = mngr.item_metadata(s)['state']
            target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), meta)
            restored = mngr.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
        except Exception as e:  # damaged step: report and try the previous one
            logging.warning('checkpoint step %d in %s is unreadable (%s)', s, directory, type(e).__name__)
            continue
        return s, restored['state']['params']
    raise FileNotFoundError(f'no readable checkpoint in {directory!r}; train first with research.main')


def merge_params(init, loaded):
    """Takes each parameter of `init` from `loaded` where the path and shape match.

    Returns (params, report) with report = dict(loaded=[paths], new=[paths], unused=[paths],
    mismatched=['path (loaded shape) vs (model shape)']): `new` are freshly initialised (e.g. a
    new task head; the mismatched ones included), `unused` are loaded tensors the model has no
    place for (e.g. a pretraining head).
    """
    flat_loaded = {'/'.join(map(str, k)): v for k, v in _flatten(loaded)}
    report = dict(loaded=[], new=[], mismatched=[])

    def pick(path, value):
        name = '/'.join(str(getattr(k, 'key', k)) for k in path)
        other = flat_loaded.pop(name, None)
        if other is not None and other.shape == value.shape:
            report['loaded'].append(name)
            return np.asarray(other, value.dtype)
        if other is not None:
            report['mismatched'].append(f'{name} {tuple(other.shape)} there vs {tuple(value.shape)} here')
        report['new'].append(name)
        return value

    params = jax.tree_util.tree_map_with_path(pick, init)
    report['unused'] = sorted(flat_loaded)
    return params, report


def _flatten(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, prefix + (k,))
    else:
        yield prefix, tree
