"""German -> English on WMT'14 (TFDS `wmt14_translate/de-en`: 4.5M training pairs,
newstest2013 validation, newstest2014 test), a joint SentencePiece vocabulary, the base
encoder-decoder (Transformer-base dimensions).

Needs network access once: `tfds build wmt14_translate/de-en --file_format array_record`, then
  python -m research.tools.build_spm --dataset wmt14_translate/de-en --keys de,en \
      --vocab_size 32000 --split 'train[:1000000]' --out artifacts/wmt14_de_en.spm
Run: python -m research.main --config experiments/translation/wmt14_de_en.py --workdir runs/wmt14
(an accelerator job; `runlocal`: a seconds-long CPU smoke run.) Validation BLEU on the first
500 newstest2013 sentences every eval; newstest2014 BLEU/chrF with beam 4 at the end.
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, size='base', runlocal=False)
    c = base_config()
    c.task, c.model.arch = 'translate', 'seq2seq'
    set_size(c.model, a.size)
    c.data.name = 'wmt14_translate/de-en'
    c.data.source_key, c.data.target_key = 'de', 'en'
    c.data.vocab_path = 'artifacts/wmt14_de_en.spm.model'
    c.data.seq_len = c.model.max_len = 128
    c.model.dropout = 0.1
    c.batch_size = 256
    c.eval_batch_size = 128
    c.total_steps = 100_000
    c.log_every = 100
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.optim.lr = 7e-4
    c.optim.warmup_steps = 4000
    c.sample.prompts = ()
    c.evals.task = dict(type='task')
    c.evals.val_bleu = dict(type='translate', split='validation', beam=1, max_examples=500, baselines=False)
    c.evals.bleu = dict(type='translate', split='test', every=0, beam=4, alpha=0.6)
    if a.runlocal:
        c.model.update(num_layers=1, d_model=32, num_heads=2, mlp_dim=64)
        c.data.seq_len = c.model.max_len = 32
        c.batch_size, c.eval_batch_size, c.total_steps = 8, 8, 2
        c.log_every, c.eval_every, c.checkpoint_every = 1, 2, 2
        c.optim.warmup_steps = 1
    return c
