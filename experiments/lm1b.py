"""GPT word-level LM on the public One Billion Word benchmark (TFDS `lm1b`).

Needs network access once to prepare the data (`tfds build lm1b`, or
tfds.builder('lm1b').download_and_prepare()), then a vocabulary:
  python -m research.tools.build_vocab --dataset lm1b --split train \
      --out artifacts/lm1b.words.txt --min_count 3 --max_size 32000
Run: python -m research.main --config experiments/lm1b.py:size=small --workdir runs/lm1b
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, size='small', runlocal=False)
    c = base_config()
    set_size(c.model, a.size)
    c.data.name = 'lm1b'
    c.data.train_split = 'train'
    c.data.eval_split = 'test'
    c.data.vocab_path = 'artifacts/lm1b.words.txt'
    c.data.seq_len = 128
    c.data.max_eval_sequences = 4096
    c.model.positions = 'rotary'
    c.model.dropout = 0.0
    c.batch_size = 256
    c.eval_batch_size = 256
    c.total_steps = 100_000
    c.log_every = 100
    c.eval_every = 2000
    c.checkpoint_every = 2000
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 2000
    c.sample.prompts = ('the president said', 'in the morning')
    if a.runlocal:
        c.batch_size, c.eval_batch_size, c.total_steps = 16, 16, 20
        c.log_every, c.eval_every, c.checkpoint_every = 5, 10, 10
        c.data.seq_len, c.data.max_eval_sequences = 32, 32
    return c
