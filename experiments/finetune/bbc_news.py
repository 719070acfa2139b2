"""Fine-tune all-MiniLM-L6-v2 (imported from its Hugging Face safetensors) on BBC News topics.

python -m research.main --config experiments/finetune/bbc_news.py --workdir runs/bbc_minilm
Linear probe: `--config.optim.freeze='^(?!head/)' --config.optim.lr=1e-2`.
Report test numbers with `--config.data.eval_split=test`.
"""

import os

from research.config import base_config, parse_arg
from research.convert.hf_bert import minilm_dir


def get_config(arg=''):
    a = parse_arg(arg, runlocal=False)
    c = base_config()
    c.task = 'classify'
    c.model.arch = 'bert'
    c.model.update(num_layers=6, d_model=384, num_heads=12, mlp_dim=1536, max_len=512, dropout=0.1, pooling='mean')
    c.init_from = 'hf:' + minilm_dir()
    c.data.name = 'bbc_news'
    c.data.tokenizer = 'wordpiece'
    c.data.vocab_path = os.path.join(minilm_dir(), 'vocab.txt')
    c.data.seq_len = 128
    c.batch_size = 16
    c.eval_batch_size = 32
    c.total_steps = 330  # 3 epochs of the 1,764 training articles
    c.log_every = 10
    c.eval_every = 110
    c.checkpoint_every = 110
    c.optim.lr = 1e-4
    c.optim.warmup_steps = 30
    c.optim.weight_decay = 0.01
    if a.runlocal:
        c.total_steps, c.log_every, c.eval_every, c.checkpoint_every = 4, 2, 0, 4
        c.data.seq_len = 32
    return c
