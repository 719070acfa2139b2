"""Decoding speed of a trained translation run: sentences/s, greedy and beam 4, at batch 1 and 32.

python benchmarks/translate.py --workdir runs/en_es [--repeats 5]

The sentences are the sources of the run's validation and test pairs, in stored order. Batch 1
decodes the first 16 one call each; batch 32 decodes the first 32 in one call (rows padded to
model.max_len, as the evaluator does). Each case: one warm-up pass (compilation), then the median
of --repeats timed passes (research.decoding.translate, blocked on). Prints sentences/s and
generated pieces/s (<eos> included).
"""

import argparse
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: `benchmarks` and `research` import from the checkout

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import time_calls  # noqa: E402
from research import checkpoint, decoding, tasks  # noqa: E402
from research import workdir as workdir_lib  # noqa: E402
from research.data import translate as translate_data  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workdir', required=True)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--alpha', type=float, default=0.6)
    args = p.parse_args()
    config = workdir_lib.trained_config(args.workdir, 'translate', 'benchmarks/translate')
    task = tasks.get(config)
    vocab = task.load_vocab()
    step, params = checkpoint.load_params(os.path.join(args.workdir, 'checkpoints'))
    pairs = [
        p for split in ('validation', 'test') for p in translate_data.read_pairs(config, split, collections.Counter())
    ]
    texts = [source for source, _ in pairs]
    if len(texts) < 32:
        raise SystemExit(f'{len(texts)} validation + test sentences; the benchmark needs 32')
    model = task.build_model(len(vocab), decode=True)
    length = config.model.max_len

    def decode(chunk, beam):
        batch = translate_data.encode_sources(vocab, chunk, length)
        options = dict(beam=beam, alpha=args.alpha, a=1.5, b=10, max_len=length, bos_id=vocab.bos_id)
        out = decoding.translate(model, params, batch['source'], batch['source_mask'], eos_id=vocab.eos_id, **options)
        return jax.block_until_ready(out)

    print(f'# {args.workdir} (step {step}), {jax.devices()[0].device_kind}, median of {args.repeats}')
    print('| decoding | batch | sentences/s | pieces/s | first pass s |')
    print('|---|---|---|---|---|')
    for beam in (1, 4):
        for batch, chunks in ((1, [[t] for t in texts[:16]]), (32, [texts[:32]])):
            t = time_calls(lambda chunks=chunks, beam=beam: [decode(c, beam) for c in chunks], 1, args.repeats)
            pieces = sum(int(np.sum(np.asarray(decode(c, beam)) > 0)) for c in chunks)
            n = sum(map(len, chunks))
            name = 'greedy' if beam == 1 else f'beam {beam}'
            print(
                f'| {name} | {batch} | {n / t["call_s"]:.1f} | {pieces / t["call_s"]:.0f} | {t["first_call_s"]:.1f} |'
            )


if __name__ == '__main__':
    main()
