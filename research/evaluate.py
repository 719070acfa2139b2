"""Evaluate without training: python -m research.evaluate --config FILE.py[:args] --workdir DIR
[--config.KEY=VALUE …].

Runs every evaluator of the config (config.evals) once on the newest checkpoint in DIR or,
when DIR has none, on the model config.init_from names (a workdir of ours or 'hf:PATH'), so a
zero-shot number needs no training at all. Metrics are appended to DIR/metrics.jsonl and
TensorBoard, written to DIR/results.json (replacing an older one), and printed.
"""

import sys

from research import main


def run(argv=None) -> int:
    return main.main(argv, evaluate_only=True, doc=__doc__)


if __name__ == '__main__':
    sys.exit(run())
