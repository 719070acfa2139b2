"""English -> Spanish translation on Bible verses (TFDS `bible_en_es`), a joint SentencePiece
vocabulary, an encoder-decoder Transformer.

Prepare once: `make system-deps data-translation` (the verse pairs and artifacts/bible_en_es.spm.model).
Run: python -m research.main --config experiments/translation/en_es.py:size=tiny --workdir runs/en_es
(`runlocal`: a seconds-long smoke run.)
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, size='tiny', runlocal=False)
    c = base_config()
    c.task, c.model.arch = 'translate', 'seq2seq'
    set_size(c.model, a.size)
    c.data.name = 'bible_en_es'
    c.data.source_key, c.data.target_key = 'en', 'es'
    c.data.vocab_path = 'artifacts/bible_en_es.spm.model'
    c.data.seq_len = 96
    c.model.max_len = 96
    c.model.dropout = 0.1
    c.batch_size = 64
    c.eval_batch_size = 64
    c.total_steps = 4000
    c.log_every = 50
    c.eval_every = 500
    c.checkpoint_every = 500
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 400
    c.sample.prompts = ()
    if a.runlocal:
        c.batch_size, c.eval_batch_size, c.total_steps = 8, 8, 10
        c.log_every, c.eval_every, c.checkpoint_every = 5, 10, 10
        c.data.seq_len = c.model.max_len = 32
        c.optim.warmup_steps = 2
    return c
