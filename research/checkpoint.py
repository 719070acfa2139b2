"""Orbax checkpoints: train state (sharded pytree) + data iterator position (JSON).

Resume order (see train.py): latest step in workdir -> config.resume -> scratch. A step
whose files are damaged (e.g. truncated by a killed process) is reported and skipped in
favour of the previous step instead of failing the run.
"""

import logging
import os

import jax
import orbax.checkpoint as ocp


def manager(directory: str, keep: int) -> ocp.CheckpointManager:
    """A CheckpointManager saving asynchronously and keeping the `keep` latest steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict):
    """Starts an async save of `state` and the data position at `step`."""
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)))


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
    """Restores the newest readable step as (step, state, data_state), or None if none.

    `abstract_state` holds jax.ShapeDtypeStruct leaves with shardings, so arrays come back
    laid out on the current mesh whatever mesh wrote them.
    """
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            restored = mngr.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
        except Exception as e:  # orbax raises many types for damaged files; report, go back one
            logging.warning('checkpoint step %d in %s is unreadable (%s: %s); trying an earlier one',
                            step, mngr.directory, type(e).__name__, str(e).splitlines()[0][:200])
            continue
        return step, restored['state'], dict(restored['data'])
    return None


def load_params(directory: str, step: int | None = None):
    """(step, params) of `step` (default: latest readable) in a checkpoint dir, on one device.

    Works whatever mesh or number of hosts wrote the checkpoint (its metadata gives the
    shapes; the target places every array on this process's first device).
    """
    mngr = ocp.CheckpointManager(os.path.abspath(directory), item_handlers={
        'state': ocp.StandardCheckpointHandler(), 'data': ocp.JsonCheckpointHandler()})
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
