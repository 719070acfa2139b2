"""Prepares a TFDS dataset offline from a local builder.

  python -m research.tools.prepare_data --dataset bbc_news [--data_dir DIR]
  python -m research.tools.prepare_data --builder path/to/my_dataset.py [--data_dir DIR]

--dataset names one of the project's builders (research.data.sources.LOCAL_BUILDERS);
--builder takes a python file of your own defining a tfds GeneratorBasedBuilder. Once
prepared, a dataset is read back by its name and data_dir alone (config.data.name /
config.data.data_dir): the builder file is not needed again. Public TFDS datasets need
network access and exit with status 2.
"""

import argparse
import importlib.util
import inspect
import os
import sys

import tensorflow_datasets as tfds

from research.data import sources


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses the command line (argv without the program name)."""
    parser = argparse.ArgumentParser(prog='python -m research.tools.prepare_data', description=__doc__.split('\n')[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument('--dataset', help=f'a project dataset: {", ".join(sources.LOCAL_BUILDERS)}')
    which.add_argument('--builder', help='a python file defining a tfds.core.GeneratorBasedBuilder')
    parser.add_argument('--data_dir', default=None, help='TFDS data dir (default: TFDS default)')
    return parser.parse_args(argv)


def builder_class(path: str) -> type:
    """The one GeneratorBasedBuilder class defined in the python file `path`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'builder file {path!r} not found')
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        c
        for c in vars(module).values()
        if inspect.isclass(c) and c.__module__ == module.__name__ and issubclass(c, tfds.core.GeneratorBasedBuilder)
    ]
    if len(classes) != 1:
        raise ValueError(f'{path} defines {len(classes)} GeneratorBasedBuilder classes; it needs exactly one')
    return classes[0]


def main(argv: list[str] | None = None) -> int:
    """Runs the tool; returns the process exit status."""
    args = parse_args(argv)
    if args.dataset and not sources.is_local(args.dataset):
        print(
            f'{args.dataset!r} is not a local dataset ({", ".join(sources.LOCAL_BUILDERS)}): '
            f'public TFDS datasets need network access to download and prepare; a dataset of your '
            f'own: --builder FILE.py'
        )
        return 2
    try:
        cls = builder_class(args.builder) if args.builder else None  # registers its name: load it once
        make = (
            (lambda: cls(data_dir=args.data_dir)) if cls else (lambda: sources.get_builder(args.dataset, args.data_dir))
        )
        sizes = sources.prepare(make)
        builder = make()
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(
        f'{builder.name} prepared in {builder.data_dir}: '
        + ', '.join(f'{split}={n}' for split, n in sizes.items())
        + f', total={sum(sizes.values())}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
