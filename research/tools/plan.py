"""Memory and layout plan of a config on a mesh, from abstract shapes only (nothing allocated).

  python -m research.tools.plan --config experiments/lm1b.py:size=base --mesh data=4,fsdp=4,tensor=2 \
      [--device_memory 16GB] [--vocab_size 32000]

Prints, per device: the bytes of parameters, optimizer state and gradients (exact: the
shard shapes of the real shardings, on an abstract mesh of that shape), an activation
estimate with and without remat (the formula in `activation_bytes`), the sharding of each
parameter class, and whether the total fits --device_memory. The device count need not
exist here: plan a pod slice from a laptop.
"""

import argparse
import math
import re
import sys

import jax
import numpy as np
from jax.sharding import AbstractMesh, AxisType

from research import config as config_lib
from research import sharding, tasks
from research.train import init_state

UNITS = {'': 1, 'B': 1, 'KB': 1e3, 'MB': 1e6, 'GB': 1e9, 'TB': 1e12, 'KIB': 2**10, 'MIB': 2**20, 'GIB': 2**30}


def parse_mesh(text: str) -> dict:
    """'data=4,fsdp=4,tensor=2' -> {'data': 4, 'fsdp': 4, 'tensor': 2} (missing axes: 1)."""
    sizes = dict.fromkeys(sharding.AXES, 1)
    for part in filter(None, text.split(',')):
        axis, _, size = part.partition('=')
        if axis not in sizes or not size.isdigit() or int(size) < 1:
            raise ValueError(f'--mesh {text!r}: expected AXIS=N,… with AXIS in {sharding.AXES} and N >= 1')
        sizes[axis] = int(size)
    return sizes


def parse_bytes(text: str) -> int:
    """'16GB' (10^9) or '16GiB' (2^30) -> bytes."""
    match = re.fullmatch(r'\s*([\d.]+)\s*([a-zA-Z]*)\s*', text)
    if not match or match.group(2).upper() not in UNITS:
        raise ValueError(f'--device_memory {text!r}: expected a number with a unit, e.g. 16GB or 80GiB')
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def device_bytes(tree) -> int:
    """Bytes one device holds of a tree of sharded abstract arrays (the largest shard each)."""
    leaves = [a for a in jax.tree.leaves(tree) if hasattr(a, 'sharding')]
    return sum(math.prod(a.sharding.shard_shape(a.shape)) * a.dtype.itemsize for a in leaves)


def activation_bytes(config, mesh: dict, vocab_size: int, remat: bool) -> int:
    """Estimated activation bytes saved for the backward pass, per device (a transformer).

    Per layer and micro-batch row, elements saved (s = seq_len, h = d_model, f = mlp_dim,
    a = heads, t = tensor): residual stream, layer-norm inputs/outputs and the attention
    and MLP inputs 5 s h; q, k, v and the attention context 4 s h / t; MLP hidden before and
    after the activation 2 s f / t; attention scores and probabilities 2 a s^2 / t. With remat
    only each layer's input s h is kept, and one layer's full set is rebuilt at a time. Plus
    one chunk of logits and their gradient (2 model.logits_chunk V / t, float32).
    """
    m, s = config.model, config.data.seq_len
    rows = config.batch_size // config.grad_accum // (mesh['data'] * mesh['fsdp'])
    t = mesh['tensor']
    layer = rows * (5 * s * m.d_model + (4 * s * m.d_model + 2 * s * m.mlp_dim + 2 * m.num_heads * s * s) / t)
    saved = m.num_layers * rows * s * m.d_model + layer if remat else m.num_layers * layer
    logits = 2 * min(m.logits_chunk, rows * s) * vocab_size / t * 4
    return int(saved * np.dtype(m.dtype).itemsize + logits)


def parameter_classes(abstract_params) -> list[tuple]:
    """[(class, count, global shape, spec, per-device shape)]: the layers of a stack are one class."""
    classes = {}
    for path, a in jax.tree_util.tree_flatten_with_path(abstract_params)[0]:
        name = re.sub(r'_\d+(/|$)', r'_*\1', '/'.join(str(getattr(k, 'key', k)) for k in path))
        row = classes.setdefault(name, [name, 0, a.shape, str(tuple(a.sharding.spec)), a.sharding.shard_shape(a.shape)])
        row[1] += 1
    return [tuple(row) for row in classes.values()]


def plan(config, mesh: dict, vocab_size: int) -> dict:
    """Per-device bytes (parameters, optimizer, gradients, activations with/without remat) and
    the parameter classes of `config` on a mesh of axis sizes `mesh`."""
    task = tasks.get(config)
    abstract_mesh = AbstractMesh(tuple(mesh[a] for a in sharding.AXES), sharding.AXES, axis_types=(AxisType.Auto,) * 3)
    abstract = init_state(task, config, vocab_size, abstract_mesh)[3]
    return dict(
        params=device_bytes(abstract.params),
        optimizer=device_bytes(abstract.opt_state),
        gradients=device_bytes(abstract.params),  # the train step differentiates every parameter
        activations=activation_bytes(config, mesh, vocab_size, remat=False),
        activations_remat=activation_bytes(config, mesh, vocab_size, remat=True),
        classes=parameter_classes(abstract.params),
        num_params=sum(math.prod(a.shape) for a in jax.tree.leaves(abstract.params)),
    )


def report(p: dict, mesh: dict, device_memory: int | None) -> str:
    """The plan as text: a byte table, the fit verdict, the parameter classes."""
    gib = lambda n: f'{n / 2**30:8.3f} GiB'  # noqa: E731
    fixed = p['params'] + p['optimizer'] + p['gradients']
    lines = [
        f'mesh {",".join(f"{a}={n}" for a, n in mesh.items())} ({math.prod(mesh.values())} devices); '
        f'{p["num_params"]:,} parameters',
        'per device:',
        f'  parameters         {gib(p["params"])}',
        f'  optimizer state    {gib(p["optimizer"])}',
        f'  gradients          {gib(p["gradients"])}',
        f'  activations        {gib(p["activations"])}  (estimate; remat: {gib(p["activations_remat"]).strip()})',
        f'  total              {gib(fixed + p["activations"])}  (remat: {gib(fixed + p["activations_remat"]).strip()})',
    ]
    if device_memory:
        verdict = lambda n: 'fits' if n <= device_memory else 'does NOT fit'  # noqa: E731
        lines.append(
            f'device memory {gib(device_memory).strip()}: {verdict(fixed + p["activations"])}; with remat '
            f"(config.model.remat='full'): {verdict(fixed + p['activations_remat'])}"
        )
    lines.append('parameter classes (count x global shape, sharding spec -> per-device shape):')
    width = max(len(c[0]) for c in p['classes'])
    for name, count, shape, spec, shard in p['classes']:
        lines.append(f'  {name:<{width}}  {count:>3} x {str(shape):<18} {spec:<28} -> {shard}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m research.tools.plan', description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='experiments/NAME.py[:key=value,…]')
    parser.add_argument('--mesh', required=True, help='data=4,fsdp=4,tensor=2 (axes left out: 1)')
    parser.add_argument('--device_memory', default='', help='e.g. 16GB or 80GiB: say whether it fits')
    parser.add_argument('--vocab_size', type=int, default=0, help='default: the size of config.data.vocab_path')
    parser.add_argument('overrides', nargs='*', help='key=value config overrides, e.g. batch_size=512')
    args = parser.parse_args(argv)
    try:
        mesh = parse_mesh(args.mesh)
        device_memory = parse_bytes(args.device_memory) if args.device_memory else None
        config = config_lib.load_config(args.config, args.overrides)
        config.mesh.update(mesh)
        config_lib.validate(config, math.prod(mesh.values()), 1, files=False)  # a plan reads no data
        vocab_size = args.vocab_size
        if not vocab_size:
            try:
                vocab_size = len(tasks.get(config).load_vocab())
            except (FileNotFoundError, OSError):
                raise ValueError(
                    f'config.data.vocab_path={config.data.vocab_path!r} not found: pass --vocab_size'
                ) from None
        print(report(plan(config, mesh, vocab_size), mesh, device_memory))
    except (ValueError, FileNotFoundError, config_lib.ConfigError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
