"""BERT-style MLM pretraining of a small word-level encoder.

corpus=bbc_news (default; `make data`) or corpus=bible (WEB, KJV, Treasury of David;
`make system-deps data-bible`):
  python -m research.main --config experiments/pretrain/mlm.py --workdir runs/bbc_mlm
  python -m research.main --config experiments/pretrain/mlm.py:corpus=bible --workdir runs/bible_mlm
Fine-tune on BBC News topics (same vocab and dims):
  python -m research.main --config experiments/finetune/bbc_news_tiny.py:init=runs/bible_mlm \
      --workdir runs/bbc_from_bible --config.data.vocab_path=artifacts/bible.words.txt
`:arch=encoder` pretrains the pre-LN rotary option instead.
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, corpus='bbc_news', size='tiny', arch='bert', runlocal=False)
    c = base_config()
    c.task = 'mlm'
    c.model.arch = a.arch
    set_size(c.model, a.size)
    c.model.dropout = 0.1
    c.data.name = a.corpus
    c.data.vocab_path = f'artifacts/{a.corpus}.words.txt'  # built by `make data` / `make data-bible`
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
