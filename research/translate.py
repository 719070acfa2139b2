"""Translate with a trained run: python -m research.translate --workdir DIR --text "…" [--text "…"]

Beam search (--beam 4, --alpha 0.6; --beam 1 is greedy) with the run's SentencePiece model
and latest readable checkpoint; with no --text, translates stdin line by line. A source
longer than model.max_len - 1 pieces is cut (said on stderr).
"""

import argparse
import sys

from research import main as main_lib


def main(argv=None):
    p = argparse.ArgumentParser(
        prog='python -m research.translate', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--workdir', required=True)
    p.add_argument('--text', action='append', help='repeat for several texts (default: stdin lines)')
    p.add_argument('--beam', type=int, default=4)
    p.add_argument('--alpha', type=float, default=0.6, help='GNMT length penalty (0: none)')
    p.add_argument('--max_len_a', type=float, default=1.5, help='a translation has at most a * source + b pieces')
    p.add_argument('--max_len_b', type=int, default=10)
    p.add_argument('--batch_size', type=int, default=32)
    p.add_argument('--step', type=int, default=None, help='checkpoint step (default: latest)')
    args = p.parse_args(argv)
    if args.beam < 1 or args.alpha < 0 or args.batch_size < 1:
        return main_lib.fail(
            f'--beam {args.beam} and --batch_size {args.batch_size} must be >= 1, --alpha {args.alpha} >= 0'
        )

    from research import workdir as workdir_lib
    from research.data import translate as translate_data

    texts = args.text if args.text else [line.rstrip('\n') for line in sys.stdin]
    if not texts or not all(t.strip() for t in texts):
        return main_lib.fail('nothing to translate: give non-empty --text (or lines on stdin)')
    try:
        config, task, vocab, step, params = workdir_lib.load_trained(args.workdir, 'translate', 'translate', args.step)
    except (workdir_lib.WorkdirError, FileNotFoundError) as e:
        return main_lib.fail(e)
    length = config.model.max_len
    for i, t in enumerate(texts):
        if len(vocab.encode(t)) > length - 1:
            print(f'note: text {i + 1} is cut to its first {length - 1} pieces (model.max_len)', file=sys.stderr)
    translate = task.translate(vocab, beam=args.beam, alpha=args.alpha, a=args.max_len_a, b=args.max_len_b)
    print(f'# checkpoint step {step}, beam {args.beam}, alpha {args.alpha}')
    for start in range(0, len(texts), args.batch_size):
        chunk = texts[start : start + args.batch_size]
        tokens = translate(params, translate_data.encode_sources(vocab, chunk, length))
        for text, row in zip(chunk, tokens):
            print(f'{text} ⟶ {vocab.decode(row)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
