"""Zero-shot throughput: all-MiniLM-L6-v2 similarity over all 2,225 BBC News articles.

python benchmarks/zero_shot.py [--seq_len 128] [--batch 64] [--repeats 3]

Builds the `model=minilm,method=zero_shot` point of experiments/fewshot/bbc_news.py on the
split `train+validation+test`, then times its three zero_shot_similarity evaluators (class
names, a template, descriptions) end to end -- features of every article, label
embeddings, metrics -- with the feature cache emptied before each timed run: one warm-up
run (compilation, WordPiece encoding), then the median of --repeats runs. Prints
examples/s per evaluator and the accuracy on all 2,225 articles. Needs `make data`.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import jax

from research import config as config_lib
from research import train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seq_len', type=int, default=128)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args()
    config = config_lib.load_config(
        'experiments/fewshot/bbc_news.py:model=minilm,method=zero_shot',
        ['data.eval_split=train+validation+test', f'data.seq_len={args.seq_len}', f'eval_batch_size={args.batch}'],
    )
    config_lib.validate(config, jax.device_count())
    workdir = tempfile.mkdtemp()
    try:
        run, state, _, _ = train.setup(config, workdir, lambda *_: None, train=False)
        n = len(run.task.examples(run.vocab, config.data.eval_split)['labels'])
        print(
            f'{n} articles, seq_len {args.seq_len}, batch {args.batch}, {jax.device_count()} x '
            f'{jax.devices()[0].device_kind}'
        )
        for ev in run.evaluators:
            times = []
            for _ in range(1 + args.repeats):
                shutil.rmtree(os.path.join(workdir, 'features'), ignore_errors=True)
                t = time.perf_counter()
                metrics = ev.run(state.params)
                times.append(time.perf_counter() - t)
            median = statistics.median(times[1:])
            accuracy = metrics[f'{ev.prefix}accuracy']
            print(
                f'{ev.name:13} {n / median:8.1f} examples/s  (median {median:.2f} s of {args.repeats}; '
                f'first run {times[0]:.2f} s)  accuracy {accuracy:.1%}'
            )
        run.writer.close()
    finally:
        shutil.rmtree(workdir)


if __name__ == '__main__':
    main()
