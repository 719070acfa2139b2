"""Word polarity (is an adjective positive or negative?): a new task as one builder + one config.

The dataset is the builder beside this file (word_polarity.py, a user's builder kept out of
the `research` package); prepare it once, then everything reads it by name:
  pip install --no-deps textblob
  python -m research.tools.prepare_data --builder experiments/polarity/word_polarity.py
  python -m research.sweep --config experiments/polarity/fewshot.py --workdir runs/fewshot_polarity
or one point: python -m research.main --config experiments/polarity/fewshot.py:method=probe,k=4 --workdir DIR
Methods: `zero_shot` (cosine similarity of the word to "good"/"bad"-style descriptions),
`probe` (k words per class, 3 draws), `finetune` (k-shot, all of MiniLM), `full` (all train words).
"""

import math
import os

from research.config import base_config, parse_arg
from research.convert.hf_bert import minilm_dir
from research.sweep import product

REPORT = dict(objective='accuracy', split='test', pivot='k', columns=('accuracy', 'macro_f1'))
DESCRIPTIONS = (
    ('negative', ('bad', 'terrible', 'unpleasant', 'sad')),
    ('positive', ('good', 'excellent', 'pleasant', 'happy')),
)


def get_config(arg=''):
    a = parse_arg(arg, method='zero_shot', k=0, seed=0)
    c = base_config()
    c.task, c.model.arch = 'classify', 'bert'
    c.model.update(num_layers=6, d_model=384, num_heads=12, mlp_dim=1536, max_len=512, dropout=0.1, pooling='mean')
    c.init_from = 'hf:' + minilm_dir()
    c.data.update(
        name='word_polarity',
        text_key='word',
        label_key='label',
        tokenizer='wordpiece',
        vocab_path=os.path.join(minilm_dir(), 'vocab.txt'),
        seq_len=8,
        eval_split='test',
    )
    c.seed = c.data.seed = c.data.subset_seed = a.seed
    c.eval_every, c.log_every, c.checkpoint_every, c.progress_bar = 0, 10, 10_000, False
    c.eval_batch_size, c.optim.lr, c.optim.weight_decay = 128, 5e-5, 0.01
    if a.method == 'zero_shot':
        c.total_steps = 0
        c.evals.similarity = dict(type='zero_shot_similarity', labels=DESCRIPTIONS)
    elif a.method == 'probe':
        c.total_steps = 0
        c.evals.probe = dict(type='probe', k=a.k, seeds=(0, 1, 2))
    elif a.method in ('finetune', 'full'):
        c.data.train_examples_per_class = a.k if a.method == 'finetune' else 0
        c.batch_size = min(16, 2 * a.k) if a.method == 'finetune' else 16
        c.total_steps = max(20, min(math.ceil(20 * 2 * a.k / c.batch_size), 200)) if a.method == 'finetune' else 150
        c.optim.warmup_steps = c.total_steps // 10
        c.evals.task = dict(type='task')
    else:
        raise ValueError(f'unknown method {a.method!r}')
    return c


def get_sweep(arg=''):
    ks = (1, 4, 16, 64)
    return (
        [dict(method='zero_shot')]
        + [dict(method='probe', k=k) for k in ks]
        + product(method=['finetune'], k=ks, seed=(0, 1, 2))
        + product(method=['full'], seed=(0, 1, 2))
    )
