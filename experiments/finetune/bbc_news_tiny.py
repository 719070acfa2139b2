"""Fine-tune our own tiny word-level BERT (from experiments/pretrain/mlm.py) on BBC News.

python -m research.main --config experiments/finetune/bbc_news_tiny.py:init=runs/bbc_mlm --workdir runs/bbc_tiny
`init=` (empty) trains the same encoder from scratch, for comparison.
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, init='runs/bbc_mlm', size='tiny', runlocal=False)
    c = base_config()
    c.task = 'classify'
    c.model.arch = 'bert'
    set_size(c.model, a.size)
    c.model.dropout = 0.1
    c.init_from = a.init
    c.data.name = 'bbc_news'
    c.data.vocab_path = 'artifacts/bbc_news.words.txt'
    c.data.seq_len = 256
    c.batch_size = 32
    c.total_steps = 220  # 4 epochs
    c.log_every = 20
    c.eval_every = 55
    c.checkpoint_every = 220
    c.optim.lr = 5e-4
    c.optim.warmup_steps = 20
    if a.runlocal:
        c.total_steps, c.log_every, c.eval_every, c.checkpoint_every = 4, 2, 0, 4
    return c
