"""Entry point: python -m research.main --config experiments/X.py[:args] --workdir DIR
[--config.KEY=VALUE …].

Any config field can be overridden with --config.KEY=VALUE (dotted keys for sections);
values are parsed as python literals and must match the default's type.
"""

import argparse
import gc
import logging
import os
import sys


def parse_args(argv, prog='python -m research.main', doc=__doc__):
    """Splits `--config.KEY=VALUE` overrides from the other flags."""
    overrides = [a[len('--config.') :] for a in argv if a.startswith('--config.')]
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='experiments/NAME.py[:key=value,…]')
    parser.add_argument('--workdir', required=True, help='checkpoints, metrics, plots go here')
    parser.add_argument(
        '--coordinator',
        default='',
        help='multi-host: host:port of process 0 (on TPU pods and SLURM leave empty and pass --distributed)',
    )
    parser.add_argument('--num_processes', type=int, default=1)
    parser.add_argument('--process_id', type=int, default=0)
    parser.add_argument(
        '--distributed', action='store_true', help='call jax.distributed.initialize() (auto-detected on TPU/SLURM)'
    )
    args = parser.parse_args([a for a in argv if not a.startswith('--config.')])
    return args, overrides


def main(argv=None, evaluate_only: bool = False, doc: str = __doc__):
    """Trains (or with evaluate_only, evaluates) per the command line; returns the exit status."""
    prog = 'python -m research.' + ('evaluate' if evaluate_only else 'main')
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv, prog, doc)
    try:
        return _run(args, overrides, evaluate_only)
    except KeyboardInterrupt:  # Ctrl-C outside training (training stops itself, with a checkpoint)
        print('error: interrupted', file=sys.stderr)
        return 130


def _run(args, overrides, evaluate_only: bool) -> int:
    import jax

    from research import config as config_lib

    logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(levelname)s %(message)s')
    if args.coordinator:
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    elif args.distributed:
        jax.distributed.initialize()
    try:  # the config is checked before the heavy imports and anything compiles
        config = config_lib.load_config(args.config, overrides)
        config_lib.validate(config, jax.device_count(), jax.process_count())
    except (config_lib.ConfigError, ValueError) as e:
        return fail(e)

    import tensorflow as tf

    tf.config.set_visible_devices([], 'GPU')  # TF only reads data; accelerators are JAX's
    from research import train
    from research.checkpoint import CheckpointError
    from research.stopping import Stopped

    try:
        result = (train.evaluate if evaluate_only else train.train_and_evaluate)(config, args.workdir)
    except Stopped as e:
        if jax.process_index() == 0:
            print(e)
        return 0
    except (config_lib.ConfigError, FileNotFoundError, FloatingPointError, CheckpointError, ValueError, KeyError) as e:
        return fail(e)
    if jax.process_index() == 0:
        print('final: ' + ', '.join(f'{k} {v:.4g}' for k, v in sorted(result.items())))
    return 0


def fail(error) -> int:
    """One line on stderr and exit status 2 (set WORDLAB_TRACEBACK=1 to see an exception's
    traceback instead); shared by the command-line tools."""
    if os.environ.get('WORDLAB_TRACEBACK') and isinstance(error, BaseException):
        raise error
    print(f'error: {error}'.splitlines()[0], file=sys.stderr)
    return 2


def cli(argv=None) -> int:
    """`wordlab-train` and `python -m research.main`: main(), then an exit without a final
    garbage collection over JAX's and TF's object graphs (it found nothing to free and took
    seconds: what a Ctrl-C'd user waits for)."""
    status = main(argv)
    gc.freeze()
    return status


if __name__ == '__main__':
    sys.exit(cli())
