"""Builds a word vocabulary file from a prepared TFDS text split.

  python -m research.tools.build_vocab --dataset bbc_news --split train --out PATH \\
      [--data_dir DIR] [--text_key text] [--min_count 2] [--max_size 8000] \\
      [--lowercase|--nolowercase] [--normalize_numbers|--nonormalize_numbers]

The tokenizer flags must match the ones the model's pipeline uses with this vocab.
"""

import argparse
import collections
import sys
from collections.abc import Iterable

import tqdm

from research.data import sources
from research.text.vocab import Vocab
from research.text.words import WordTokenizer


def count_tokens(texts: Iterable[str], tokenizer: WordTokenizer, progress: bool = False) -> collections.Counter:
    """Returns how often each token of `tokenizer` occurs in `texts`."""
    counts = collections.Counter()
    for text in tqdm.tqdm(texts, desc='counting', unit=' docs', disable=not progress):
        counts.update(tokenizer.tokenize(text))
    return counts


def coverage(counts: collections.Counter, vocab: Vocab) -> float:
    """Returns the fraction of counted tokens that are in `vocab` (1.0 if none)."""
    total = sum(counts.values())
    return sum(c for tok, c in counts.items() if tok in vocab) / total if total else 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses the command line (argv without the program name)."""
    parser = argparse.ArgumentParser(prog='python -m research.tools.build_vocab', description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', required=True, help='TFDS name, e.g. bbc_news')
    parser.add_argument('--split', default='train')
    parser.add_argument('--data_dir', default=None, help='TFDS data dir')
    parser.add_argument('--text_key', default='text')
    parser.add_argument('--out', required=True, help='vocabulary file to write')
    parser.add_argument('--min_count', type=int, default=2)
    parser.add_argument('--max_size', type=int, default=None, help='at most this many entries, specials included')
    parser.add_argument('--lowercase', dest='lowercase', action='store_true', default=True)
    parser.add_argument('--nolowercase', dest='lowercase', action='store_false')
    parser.add_argument('--normalize_numbers', dest='normalize_numbers', action='store_true', default=False)
    parser.add_argument('--nonormalize_numbers', dest='normalize_numbers', action='store_false')
    parser.add_argument('--progress', dest='progress', action='store_true', default=True)
    parser.add_argument('--noprogress', dest='progress', action='store_false')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the tool; returns the process exit status."""
    args = parse_args(argv)
    tokenizer = WordTokenizer(lowercase=args.lowercase, normalize_numbers=args.normalize_numbers)
    stats = collections.Counter()
    texts = sources.iter_texts(args.dataset, args.split, args.data_dir, text_key=args.text_key, stats=stats)
    counts = count_tokens(texts, tokenizer, progress=args.progress)
    vocab = Vocab.build(counts, min_count=args.min_count, max_size=args.max_size)
    vocab.save(args.out)
    print(
        f'{args.out}: docs={stats["docs"]} tokens={sum(counts.values())} '
        f'types={len(counts)} vocab={len(vocab)} coverage={coverage(counts, vocab):.4f} '
        f'empty={stats["empty"]} non_utf8={stats["non_utf8"]} '
        f'(lowercase={tokenizer.lowercase}, normalize_numbers={tokenizer.normalize_numbers})'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
