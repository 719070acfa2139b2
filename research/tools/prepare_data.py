"""Prepares a TFDS dataset offline from a local builder.

  python -m research.tools.prepare_data --dataset bbc_news [--data_dir DIR]
  python -m research.tools.prepare_data --builder path/to/my_dataset.py [--data_dir DIR]

--dataset names one of the project's builders (research.data.sources.LOCAL_BUILDERS);
--builder takes a python file of your own defining a tfds GeneratorBasedBuilder. Once
prepared, a dataset is read back by its name and data_dir alone (config.data.name /
config.data.data_dir): the builder file is not needed again. Public TFDS datasets need
network access and exit with status 2, as does a builder that raises: one `error:` line
naming its file and line (WORDLAB_TRACEBACK=1 shows the traceback).
"""

import argparse
import contextlib
import importlib.util
import inspect
import os
import re
import sys

import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle

from research import main as main_lib
from research.data import sources
from research.schema import located


class BuilderError(Exception):
    """The user's builder raised (or TFDS refused what it yielded); the message is one line."""


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
    with blaming(path):
        spec.loader.exec_module(module)
    classes = [
        c
        for c in vars(module).values()
        if inspect.isclass(c) and c.__module__ == module.__name__ and issubclass(c, tfds.core.GeneratorBasedBuilder)
    ]
    if len(classes) != 1:
        raise ValueError(f'{path} defines {len(classes)} GeneratorBasedBuilder classes; it needs exactly one')
    return classes[0]


@contextlib.contextmanager
def blaming(path: str):
    """Turns an exception raised while running the builder file `path` into a BuilderError."""
    try:
        yield
    except Exception as e:
        raise BuilderError(builder_error(e, path)) from e


def builder_error(error: Exception, path: str) -> str:
    """One line for `error`, raised by the builder file `path` or by TFDS running it: the
    builder's own line that raised (`path:line: Type: message`) when there is one (as
    research.config does for experiment files); duplicate keys, which TFDS finds only
    after the builder yielded them, in words."""
    text = str(error).splitlines()[0] if str(error) else ''
    message = f'{type(error).__name__}: {text}' if text else type(error).__name__
    if isinstance(error, SyntaxError):
        return f'{located(error, path)}: {error.msg}; fix the builder'
    chain = [error, error.__cause__ or error.__context__]
    if any(isinstance(e, shuffle.DuplicatedKeysError) for e in chain):
        split = re.search(r'split "([^"]+)"', str(error))
        return (
            f'{path}: _generate_examples yielded two examples with the same key'
            + (f' in split {split.group(1)!r}' if split else '')
            + ' (both logged above); every key must be unique; fix the builder'
        )
    where = located(error, path)
    if where != path:
        return f'{where}: {message}; fix the builder'
    return f'{path}: {message} (raised by TFDS preparing it: WORDLAB_TRACEBACK=1 shows where)'


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
        with blaming(args.builder) if cls else contextlib.nullcontext():
            sizes = sources.prepare(make)
        builder = make()
    except (FileNotFoundError, ValueError, BuilderError) as e:
        return main_lib.fail(e)
    print(
        f'{builder.name} prepared in {builder.data_dir}: '
        + ', '.join(f'{split}={n}' for split, n in sizes.items())
        + f', total={sum(sizes.values())}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
