"""Beam size x length penalty (GNMT alpha) on the validation books, decoding one trained
English -> Spanish model (no training: each point evaluates `init_from`).

python -m research.sweep --config experiments/translation/beams.py:init_from=runs/en_es --workdir runs/en_es_beams
Each point is experiments/translation/en_es.py's model with one `translate` evaluator on
validation; results.md has BLEU by beam and alpha.
"""

import os

from research.config import load_config, parse_arg
from research.sweep import product

REPORT = dict(objective='bleu', split='val', columns=('bleu', 'chrf', 'length_ratio'), pivot='alpha')
EN_ES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'en_es.py')


def get_config(arg=''):
    a = parse_arg(arg, init_from='runs/en_es', size='tiny', beam=4, alpha=0.6, runlocal=False)
    c = load_config(f'{EN_ES}:size={a.size}' + (',runlocal' if a.runlocal else ''))
    c.init_from, c.total_steps = a.init_from, 0
    c.evals = dict(beams=dict(type='translate', split='validation', beam=a.beam, alpha=a.alpha, baselines=False))
    return c


def get_sweep(arg=''):
    return [dict(beam=1, alpha=0.0)] + product(beam=[2, 4, 8], alpha=[0.0, 0.6, 1.0])  # alpha: no effect at beam 1
