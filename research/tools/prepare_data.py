"""Prepares a local TFDS dataset offline.

  python -m research.tools.prepare_data --dataset bbc_news [--data_dir DIR]

Only local builders (research.data.sources.LOCAL_BUILDERS) can be prepared here; public
TFDS datasets need network access and exit with status 2.
"""

import argparse
import sys

import tensorflow_datasets as tfds

from research.data import sources


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses the command line (argv without the program name)."""
    parser = argparse.ArgumentParser(
        prog='python -m research.tools.prepare_data', description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', required=True,
                        help=f'local dataset: {", ".join(sources.LOCAL_BUILDERS)}')
    parser.add_argument('--data_dir', default=None, help='TFDS data dir (default: TFDS default)')
    return parser.parse_args(argv)


def prepare(name: str, data_dir: str | None) -> dict[str, int]:
    """Prepares local dataset `name` (a no-op if already prepared); returns split sizes."""
    builder = sources.get_builder(name, data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return {split: info.num_examples for split, info in sorted(builder.info.splits.items())}


def main(argv: list[str] | None = None) -> int:
    """Runs the tool; returns the process exit status."""
    args = parse_args(argv)
    if not sources.is_local(args.dataset):
        print(f'{args.dataset!r} is not a local dataset ({", ".join(sources.LOCAL_BUILDERS)}): '
              f'public TFDS datasets need network access to download and prepare.')
        return 2
    sizes = prepare(args.dataset, args.data_dir)
    builder = sources.get_builder(args.dataset, args.data_dir)
    print(f'{args.dataset} prepared in {builder.data_dir}: '
          + ', '.join(f'{split}={n}' for split, n in sizes.items())
          + f', total={sum(sizes.values())}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
