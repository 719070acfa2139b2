"""Compile time, step time and XLA's planned step memory against depth: unrolled vs scanned
blocks (config.model.scan_layers), with each remat policy.

python benchmarks/depth.py [--layers 2,8,16] [--shape small] [--remat none,full,dots_saveable]

The decoder at the benchmark shape (benchmarks/common.py SHAPES) with num_layers replaced;
one process, each configuration compiled afresh (lower + compile of the real train step).
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script: `benchmarks` and `research` import from the checkout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--layers', default='2,8,16')
    parser.add_argument('--shape', default='small')
    parser.add_argument('--remat', default='none,full,dots_saveable')
    args = parser.parse_args(argv)
    from benchmarks import ours

    print(f'decoder, shape {args.shape}: compile s / step s / planned step memory MiB')
    print(f'{"layers":>6} {"remat":>13} {"unrolled":>24} {"scanned":>24}')
    for layers in map(int, args.layers.split(',')):
        for remat in args.remat.split(','):
            cells = []
            for scan in (False, True):
                model = dict(num_layers=layers, remat=remat, scan_layers=scan)
                r = ours.train('decoder', args.shape, warmup=1, steps=3, **model)
                cells.append(f'{r["compile_s"]:5.2f} / {r["step_s"]:5.3f} / {r["memory_bytes"] / 2**20:6.0f}')
            print(f'{layers:>6} {remat:>13} {cells[0]:>24} {cells[1]:>24}', flush=True)


if __name__ == '__main__':
    main()
