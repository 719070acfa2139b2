"""Generate text from a trained run: python -m research.generate --workdir DIR --prompt "…"

Greedy by default (--temperature 0); --temperature T --top_k K samples. Reads the run's
config.json and its latest readable checkpoint.
"""

import argparse
import json
import os
import sys

import ml_collections


def main(argv=None):
    p = argparse.ArgumentParser(
        prog='python -m research.generate', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--workdir', required=True)
    p.add_argument('--prompt', action='append', required=True, help='repeat for several prompts')
    p.add_argument('--max_new_tokens', type=int, default=40)
    p.add_argument('--temperature', type=float, default=0.0)
    p.add_argument('--top_k', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--step', type=int, default=None, help='checkpoint step (default: latest)')
    args = p.parse_args(argv)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import jax

    from research import checkpoint, sampling, tasks
    from research.tasks import lm
    from research.text import vocab as vocab_lib

    config_path = os.path.join(args.workdir, 'config.json')
    if not os.path.isfile(config_path):
        print(f'error: {config_path} not found; is --workdir a training run directory?', file=sys.stderr)
        return 2
    with open(config_path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if config.task != 'lm':
        print(
            f'error: {args.workdir} trained task {config.task!r}; research.generate needs a decoder '
            f"language model (task 'lm')",
            file=sys.stderr,
        )
        return 2
    try:
        vocab = vocab_lib.Vocab.load(config.data.vocab_path)
        step, params = checkpoint.load_params(os.path.join(args.workdir, 'checkpoints'), args.step)
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    task = tasks.get(config)
    tokenizer = task.tokenizer()
    prompts = [lm.encode_prompt(p, tokenizer, vocab) for p in args.prompt]
    outs = sampling.generate(
        task.build_model(len(vocab), decode=True),
        params,
        prompts,
        args.max_new_tokens,
        jax.random.key(args.seed),
        args.temperature,
        args.top_k,
        eos_id=vocab_lib.EOS_ID,
    )
    print(f'# checkpoint step {step}')
    for prompt, out in zip(args.prompt, outs):
        print(f'{prompt} ⟶ {tokenizer.detokenize(vocab.decode(out))}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
