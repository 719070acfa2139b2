"""Hyperparameter search: learning rate x warmup for fine-tuning all-MiniLM-L6-v2 on 16 BBC
News articles per class, chosen on validation, reported on test too.

python -m research.sweep --config experiments/sweeps/bbc_lr.py --workdir runs/bbc_lr            # 8 random points
python -m research.sweep --config experiments/sweeps/bbc_lr.py --workdir runs/bbc_lr_tpe \
    --search tpe --trials 8 --objective val/accuracy                                            # optuna TPE
A trial is the few-shot experiment's `model=minilm,method=finetune,k=16` run
(experiments/fewshot/bbc_news.py) with its optimizer fields overridden.
"""

import os

from research.config import load_config, parse_arg
from research.sweep import choice, loguniform, random

REPORT = dict(objective='accuracy', split='val', columns=('accuracy', 'macro_f1', 'loss'))
FEWSHOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fewshot', 'bbc_news.py')


def get_config(arg=''):
    a = parse_arg(arg, runlocal=False)
    c = load_config(FEWSHOT + ':model=minilm,method=finetune,k=16,seed=0' + (',runlocal' if a.runlocal else ''))
    c.evals.task = dict(type='task', split='validation')  # selection
    c.evals.test = dict(type='task', split='test')  # reported beside it, never used to choose
    return c


def get_sweep(arg=''):
    a = parse_arg(arg, runlocal=False)
    return random(
        3 if a.runlocal else 8, 0, {'optim.lr': loguniform(1e-5, 1e-3), 'optim.warmup_steps': choice([0, 5, 10, 20])}
    )
