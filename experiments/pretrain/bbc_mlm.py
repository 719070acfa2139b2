"""BERT-style MLM pretraining of a small word-level encoder on BBC News text.

python -m research.main --config experiments/pretrain/bbc_mlm.py --workdir runs/bbc_mlm
Then fine-tune it: experiments/finetune/bbc_news.py with --config.init_from=runs/bbc_mlm and
the same tokenizer/dims (see that file), or use `:arch=encoder` for the pre-LN rotary option.
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, size='tiny', arch='bert', runlocal=False)
    c = base_config()
    c.task = 'mlm'
    c.model.arch = a.arch
    set_size(c.model, a.size)
    c.model.dropout = 0.1
    c.data.name = 'bbc_news'
    c.data.vocab_path = 'artifacts/bbc_news.words.txt'
    c.data.seq_len = 128
    c.batch_size = 32
    c.total_steps = 1000
    c.log_every = 50
    c.eval_every = 250
    c.checkpoint_every = 500
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 100
    if a.runlocal:
        c.total_steps, c.log_every, c.eval_every, c.checkpoint_every = 20, 5, 10, 10
        c.data.max_eval_sequences = 64
    return c
