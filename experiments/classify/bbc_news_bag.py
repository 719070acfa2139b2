"""BBC News topic classification (5 classes) with the bag-of-embeddings baseline.

python -m research.main --config experiments/classify/bbc_news_bag.py --workdir runs/bbc_bag
Class imbalance study: add `:imbalanced` (business kept at 10% in train) and
`--config.loss.balanced=True`; report test numbers with `--config.data.eval_split=test`.
"""

from research.config import base_config, parse_arg


def get_config(arg=''):
    a = parse_arg(arg, imbalanced=False, runlocal=False)
    c = base_config()
    c.task = 'classify'
    c.model.arch = 'bag'
    c.model.d_model = 64
    c.model.dropout = 0.2
    c.data.name = 'bbc_news'
    c.data.vocab_path = 'artifacts/bbc_news.words.txt'
    c.data.seq_len = 512
    c.batch_size = 32
    c.eval_batch_size = 64
    c.total_steps = 600
    c.log_every = 50
    c.eval_every = 200
    c.checkpoint_every = 600
    c.optim.lr = 5e-3
    c.optim.warmup_steps = 20
    c.optim.weight_decay = 0.0
    if a.imbalanced:
        c.data.train_class_fraction = (('business', 0.1),)
    if a.runlocal:
        c.total_steps, c.log_every, c.eval_every, c.checkpoint_every = 20, 5, 10, 10
    return c
