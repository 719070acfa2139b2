"""Input pipeline alone (no model): tokens/s and the cost of resuming late in an epoch.

python benchmarks/input.py [--docs 1000000] [--data_dir runs/bench_data] [--batches 8] [--rounds 3]

Prepares (once, cached in --data_dir) a synthetic corpus of --docs documents shaped like
lm1b sentences (Zipf-distributed words, ~27 per document) as ArrayRecord files, then runs
the LM training pipeline of experiments/lm1b.py (batch 256 x 128 tokens) on it:
- tokens/s it delivers with data.workers = 0 and 2 (median over --rounds of --batches batches
  after one warm-up batch, worker start-up excluded), next to the train step's tokens/s of
  the `small` decoder of benchmarks/run.py measured in the same run;
- resuming at 90% of an epoch: seconds from a checkpointed position to the first batch
  (the pipeline built, one document per row read), against re-reading the 90% at the
  measured rate (what the pipeline before grain did).
"""

import argparse
import collections
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: `benchmarks` and `research` import from the checkout


def prepare(data_dir: str, docs: int) -> tuple[str, str]:
    """The corpus in data_dir (prepared unless it is there) and a vocab of all its words."""
    from benchmarks.synthetic import WORDS, SyntheticDocs
    from research.data import sources
    from research.text.vocab import Vocab

    SyntheticDocs.docs = docs
    data_dir = os.path.join(data_dir, f'synthetic_{docs}')
    sizes = sources.prepare(lambda: SyntheticDocs(data_dir=data_dir))
    assert sizes == {'train': docs}, sizes
    vocab_path = os.path.join(data_dir, 'vocab.txt')
    Vocab.build(collections.Counter({f'w{w}': WORDS - w for w in range(WORDS)})).save(vocab_path)
    return data_dir, vocab_path


def lm1b_config(data_dir: str, vocab_path: str, workers: int):
    from research.config import load_config

    overrides = ['data.name=synthetic_docs', f'data.data_dir={data_dir}', f'data.vocab_path={vocab_path}']
    return load_config(os.path.join(ROOT, 'experiments/lm1b.py'), overrides + [f'data.workers={workers}'])


def throughput(config, vocab, batches: int) -> float:
    """Tokens/s of `batches` batches after a warm-up batch (worker start-up excluded)."""
    from research.data import lm

    it = lm.train_iterator(config, vocab, slice(0, config.batch_size))
    next(it)
    t = time.perf_counter()
    tokens = sum(next(it)['weights'].size for _ in range(batches))
    return tokens / (time.perf_counter() - t)


def resume_late(config, vocab, fraction: float) -> float:
    """Seconds from a position `fraction` into the first epoch to the first batch."""
    from research.data import lm, sources

    n, size = len(sources.load_split(config.data.name, 'train', config.data.data_dir)), config.batch_size
    rows = [[0, int(fraction * -(-(n - r) // size)), 0] for r in range(size)]
    t = time.perf_counter()
    next(lm.train_iterator(config, vocab, slice(0, size), {'step': 1000, 'rows': rows, 'counts': {}}))
    return time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--docs', type=int, default=1_000_000)
    parser.add_argument('--data_dir', default=os.path.join(ROOT, 'runs', 'bench_data'))
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args(argv)
    from benchmarks import ours
    from research.text.vocab import Vocab

    t = time.perf_counter()
    data_dir, vocab_path = prepare(args.data_dir, args.docs)
    print(f'corpus: {args.docs} documents in {data_dir} (ready in {time.perf_counter() - t:.0f} s)')
    vocab = Vocab.load(vocab_path)
    rates = {}
    for workers in (0, 2):
        config = lm1b_config(data_dir, vocab_path, workers)
        runs = [throughput(config, vocab, args.batches) for _ in range(args.rounds)]
        rates[workers] = statistics.median(runs)
        print(f'pipeline, data.workers={workers}: {rates[workers]:,.0f} tokens/s (runs: {[round(r) for r in runs]})')
    train = ours.train('decoder', 'small', warmup=2, steps=5)
    step_tokens = ours.config('decoder', 'small').batch_size * ours.config('decoder', 'small').data.seq_len
    train_rate = step_tokens / train['step_s']
    print(
        f'train step, small decoder: {train_rate:,.0f} tokens/s; pipeline / train: '
        + ', '.join(f'{rates[w] / train_rate:.1f}x (workers={w})' for w in rates)
    )
    config = lm1b_config(data_dir, vocab_path, 0)
    resume = statistics.median(resume_late(config, vocab, 0.9) for _ in range(args.rounds))
    words_per_doc = 27 + 1  # geometric mean length + <eos>
    reread = 0.9 * args.docs * words_per_doc / rates[0]
    print(f'resume at 90% of an epoch: {resume:.2f} s to the first batch (re-reading the 90%: ~{reread:.0f} s)')


if __name__ == '__main__':
    main()
