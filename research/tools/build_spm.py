"""Trains a joint SentencePiece model on text features of a prepared TFDS dataset.

  python -m research.tools.build_spm --dataset bible_en_es --keys en,es --vocab_size 8000 \
      --out artifacts/bible_en_es.spm [--split train] [--model_type unigram|bpe] [--data_dir DIR]

Writes OUT.model (the artifact a config references: config.data.vocab_path) and OUT.vocab.
Both sides of a translation dataset go into one model, so source and target can share
embeddings.
"""

import argparse
import collections
import sys

from research.data import sources
from research.text import spm


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m research.tools.build_spm', description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', required=True, help='a prepared TFDS dataset, e.g. bible_en_es')
    parser.add_argument('--keys', default='text', help='comma-separated text features, e.g. en,es')
    parser.add_argument('--split', default='train')
    parser.add_argument('--vocab_size', type=int, default=8000)
    parser.add_argument('--model_type', default='unigram', choices=('unigram', 'bpe'))
    parser.add_argument('--out', required=True, help='output prefix: writes OUT.model and OUT.vocab')
    parser.add_argument('--data_dir', default=None)
    return parser.parse_args(argv)


def texts(dataset: str, split: str, data_dir, keys: list[str], stats: collections.Counter):
    """Every non-blank text of the `keys` features, in stored order (counted in `stats`)."""
    features = sources.features(dataset, data_dir)
    for key in keys:
        if key not in features:
            raise ValueError(f'--keys {key!r} is not a feature of {dataset!r}; features: {sorted(features)}')
    for ex in sources.load_split(dataset, split, data_dir):
        for key in keys:
            text = sources.decode_text(ex[key], stats)
            if text is not None:
                yield text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stats = collections.Counter()
    try:
        spm.train(
            texts(args.dataset, args.split, args.data_dir, args.keys.split(','), stats),
            args.out,
            args.vocab_size,
            args.model_type,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(
        f'{args.out}.model: {args.vocab_size} pieces ({args.model_type}) from {stats["docs"]} texts of '
        f'{args.dataset}/{args.split} ({stats["empty"]} empty skipped)'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
