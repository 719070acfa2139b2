"""Generate text from a trained run: python -m research.generate --workdir DIR --prompt "…"

Greedy by default (--temperature 0); --temperature T --top_k K samples. Reads the run's
config.json and its latest readable checkpoint.
"""

import argparse
import sys

from research import main as main_lib


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
    p.add_argument(
        '--keep_last',
        action='store_true',
        help='a prompt too long for the context keeps its last tokens instead of being an error',
    )
    args = p.parse_args(argv)
    import jax

    from research import sampling
    from research import workdir as workdir_lib
    from research.tasks import lm
    from research.text import vocab as vocab_lib

    try:
        config, task, vocab, step, params = workdir_lib.load_trained(args.workdir, 'lm', 'generate', args.step)
    except (workdir_lib.WorkdirError, FileNotFoundError) as e:
        return main_lib.fail(e)
    tokenizer = task.tokenizer()
    prompts = [lm.encode_prompt(p, tokenizer, vocab) for p in args.prompt]
    room = config.model.max_len - args.max_new_tokens  # the context holds prompt and continuation
    if room < 1:
        return main_lib.fail(
            f'--max_new_tokens {args.max_new_tokens} leaves no room for a prompt in the context of '
            f'{config.model.max_len} tokens (model.max_len); ask for fewer'
        )
    longest = max(len(p) for p in prompts)
    if longest > room and not args.keep_last:
        return main_lib.fail(
            f'a prompt of {longest} tokens + --max_new_tokens {args.max_new_tokens} exceeds the context of '
            f'{config.model.max_len} tokens (model.max_len); shorten it, or pass --keep_last to keep its '
            f'last {room} tokens'
        )
    prompts = [p[-room:] for p in prompts]
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
