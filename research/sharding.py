"""Mesh, logical-axis shardings and batch placement (single- and multi-host alike).

Nothing here knows how many hosts there are beyond jax.process_index()/process_count():
each host holds its slice of the global batch and `make_array_from_process_local_data`
assembles the global array.
"""

import contextlib

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from research.schema import need

AXES = ('data', 'fsdp', 'tensor')
BATCH_AXES = ('data', 'fsdp')


def check_mesh(mesh_config, num_devices: int) -> int:
    """The size of the data axis (-1 resolved) of a config.mesh for `num_devices` devices;
    a one-line ConfigError when the axes do not multiply to the device count."""
    m = mesh_config
    for axis in ('fsdp', 'tensor'):
        need(m[axis] >= 1, f'config.mesh.{axis}={m[axis]} must be >= 1')
    fixed = m.fsdp * m.tensor
    data = num_devices // fixed if m.data == -1 else m.data
    need(
        data >= 1 and data * fixed == num_devices,
        f'config.mesh data*fsdp*tensor = {m.data}*{m.fsdp}*{m.tensor} does not match the '
        f'{num_devices} devices; set config.mesh.data=-1 or sizes whose product is {num_devices}',
    )
    return data


def make_mesh(mesh_config, devices=None) -> Mesh:
    """A ('data', 'fsdp', 'tensor') mesh over `devices` (default all); data=-1 takes the rest."""
    devices = jax.devices() if devices is None else devices
    fsdp, tensor = mesh_config.fsdp, mesh_config.tensor
    data = len(devices) // (fsdp * tensor) if mesh_config.data == -1 else mesh_config.data
    return jax.make_mesh((data, fsdp, tensor), AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


@contextlib.contextmanager
def context(mesh: Mesh, rules):
    """Mesh + logical axis rules in scope, so activation constraints in models take effect.

    Trace (first call) every jitted model function inside it; flax's logical
    constraints are silently no-ops without rules.
    """
    with jax.set_mesh(mesh), nn.logical_axis_rules([tuple(r) for r in rules]):
        yield


def logical_shardings(abstract_tree, mesh: Mesh, rules):
    """NamedShardings for a tree of (possibly nn.Partitioned-boxed) abstract arrays."""
    specs = nn.get_partition_spec(abstract_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, [tuple(r) for r in rules])


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over data and fsdp; other axes replicated."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
    """This host's numpy slice of the batch -> global jax arrays sharded over the batch axes."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def local_rows(global_batch_size: int) -> slice:
    """The rows of a global batch that this host loads: its contiguous block.

    Assumes the batch axes (data, fsdp) order devices host by host, which holds for
    jax.make_mesh on TPU/GPU pods and for CPU processes (validate() checks divisibility).
    """
    per_host = global_batch_size // jax.process_count()
    start = jax.process_index() * per_host
    return slice(start, start + per_host)
