"""Benchmark suite: ours vs the Hugging Face Flax reference, interleaved in one run (`make bench`).

python benchmarks/run.py [--cases train:decoder:tiny,decode:1,…] [--rounds 2] [--steps 10] [--json FILE]
                         [--dtype bfloat16] [--no_reference]

Cases: train:{decoder,encoder}:{tiny,small,medium} (train tokens/s, step time, compile time
of the first step, XLA's planned memory, MFU) and decode:{1,8} (greedy, 32-token prompt,
128 new tokens, at the `small` shape: new tokens/s). Every measurement runs in a fresh
process; per case the order is ours -> reference -> ours -> reference -> … -> ours
(`--rounds` reference runs), and each round's ratio is ours (mean of the runs before and
after) / reference. This machine's speed drifts 10-25% over minutes; only such interleaved
ratios mean anything. The reference needs `pip install -e '.[bench]'` (transformers < 5,
which still has Flax GPT-2 and BERT); without it only our side runs. The MFU denominator
is the best float32 matmul FLOP/s measured in this run (before and after the cases).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: `benchmarks` and `research` import from the checkout

CASES = [f'train:{k}:{s}' for k in ('decoder', 'encoder') for s in ('tiny', 'small', 'medium')] + [
    'decode:1',
    'decode:8',
]


def worker(impl: str, case: str, warmup: int, steps: int, dtype: str) -> dict:
    """One measurement in this process (the `--worker` mode)."""
    from benchmarks import hf, ours

    what, *rest = case.split(':')
    if impl == 'hf':
        return hf.train(rest[0], rest[1], warmup, steps) if what == 'train' else hf.decode(int(rest[0]), warmup, steps)
    if what == 'train':
        return ours.train(rest[0], rest[1], warmup, steps, dtype=dtype)
    return ours.decode(int(rest[0]), warmup, steps)


def measure(impl: str, case: str, args) -> dict:
    cmd = [sys.executable, __file__, '--worker', impl, '--cases', case, '--warmup', str(args.warmup)]
    cmd += ['--steps', str(args.steps), '--dtype', args.dtype]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith('RESULT ')]
    if done.returncode or not lines:
        raise RuntimeError(f'{impl} {case} failed (exit {done.returncode}):\n{done.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT ') :])


def rate(case: str, r: dict) -> float:
    """Tokens/s: trained tokens per step time, or new tokens per generate call."""
    from benchmarks import common

    if case.startswith('train'):
        s = common.dims(case.split(':')[2])
        return s['batch'] * s['seq'] / r['step_s']
    return int(case.split(':')[1]) * common.NEW_TOKENS / r['call_s']


def has_reference() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def run_case(case: str, args, reference: bool) -> dict:
    ours = [measure('ours', case, args)]
    theirs = []
    for _ in range(args.rounds if reference else 0):
        theirs.append(measure('hf', case, args))
        ours.append(measure('ours', case, args))
    out = dict(case=case, ours=ours, reference=theirs)
    if theirs:
        out['ratios'] = [
            (rate(case, ours[i]) + rate(case, ours[i + 1])) / 2 / rate(case, t) for i, t in enumerate(theirs)
        ]
    return out


def fmt_row(r: dict, peak: float) -> str:
    case = r['case']
    ours = r['ours']
    speed = statistics.mean(rate(case, x) for x in ours)
    cells = [case, f'{speed:,.0f}']
    if case.startswith('train'):
        mfu = statistics.mean(rate(case, x) * x['flops_per_token'] for x in ours) / peak
        cells += [f'{mfu:.1%}', f'{statistics.median(x["compile_s"] for x in ours):.2f}', _mib(ours[0])]
    else:
        cells += ['', f'{statistics.median(x["first_call_s"] for x in ours):.2f}', '']
    if r['reference']:
        theirs = r['reference']
        ratios = r['ratios']
        first = 'compile_s' if case.startswith('train') else 'first_call_s'
        cells += [
            f'{statistics.mean(rate(case, x) for x in theirs):,.0f}',
            f'{statistics.median(x[first] for x in theirs):.2f}',
            _mib(theirs[0]) if case.startswith('train') else '',
            f'{statistics.mean(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})',
        ]
    return '| ' + ' | '.join(cells) + ' |'


def _mib(r: dict) -> str:
    b = r.get('device_peak_bytes') or r['memory_bytes']
    return f'{b / 2**20:.0f}'


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cases', default=','.join(CASES))
    p.add_argument('--rounds', type=int, default=2, help='reference runs per case, each between two of ours')
    p.add_argument('--steps', type=int, default=10, help='timed steps (decode: timed calls) per run')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--no_reference', action='store_true', help='time our side only')
    p.add_argument('--dtype', default='float32', help="our train step's compute dtype (the reference: float32)")
    p.add_argument('--json', default='', help='also write every measurement here')
    p.add_argument('--worker', choices=('ours', 'hf'), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.steps < 10 or args.warmup < 1:
        p.error('--steps must be >= 10 and --warmup >= 1 (the median of timed steps after warm-up)')
    if args.worker:
        print('RESULT ' + json.dumps(worker(args.worker, args.cases, args.warmup, args.steps, args.dtype)), flush=True)
        return
    cases = args.cases.split(',')
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        p.error(f'unknown case(s) {unknown}; choose from {CASES}')
    reference = not args.no_reference and has_reference()
    if not reference and not args.no_reference:
        print("note: transformers is not installed (pip install -e '.[bench]'): timing our side only")

    import jax

    from research import flops

    peaks = [flops.measure_matmul_peak(n=2048) * jax.device_count()]
    header = '| case | ours tokens/s | ours MFU | ours compile s | ours MiB |'
    if reference:
        header += ' HF tokens/s | HF compile s | HF MiB | ours / HF (min-max) |'
    print(f'devices: {jax.device_count()} x {jax.devices()[0].device_kind}', flush=True)
    results = []
    for case in cases:
        results.append(run_case(case, args, reference))
        print(f'  {case} done', flush=True)
    peaks.append(flops.measure_matmul_peak(n=2048) * jax.device_count())
    peak = max(peaks)
    print(f'float32 matmul peak (best of two, this run): {peak / 1e9:.1f} GFLOP/s')
    print(header)
    print('|' + ' --- |' * (header.count('|') - 1))
    for r in results:
        print(fmt_row(r, peak))
    for r in results:
        if r['reference'] and r['case'].startswith('train'):
            ours_n, theirs_n = r['ours'][0]['params'], r['reference'][0]['params']
            if ours_n != theirs_n:
                print(f'warning: {r["case"]}: {ours_n:,} parameters here vs {theirs_n:,} in the reference')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(peak_flops=peak, device=jax.devices()[0].device_kind, results=results), f, indent=1)


if __name__ == '__main__':
    main()
