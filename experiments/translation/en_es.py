"""English -> Spanish translation on Bible verses (TFDS `bible_en_es`), a joint SentencePiece
vocabulary, an encoder-decoder Transformer.

Prepare once: `make system-deps data-translation` (the verse pairs and artifacts/bible_en_es.spm.model).
Run: python -m research.main --config experiments/translation/en_es.py:size=tiny --workdir runs/en_es
(`runlocal`: a seconds-long smoke run.) At the end the test books are translated with beam
search (`beam`, `alpha`: chosen on the validation books by experiments/translation/beams.py),
with beam 4 and greedily, and scored with BLEU/chrF beside the copy-the-source and word-dictionary
baselines (95% bootstrap intervals, and paired comparisons with each baseline).
"""

from research.config import base_config, parse_arg
from research.models.sizes import set_size


def get_config(arg=''):
    a = parse_arg(arg, size='tiny', beam=8, alpha=1.0, runlocal=False)  # beam, alpha: best on validation
    c = base_config()
    c.task, c.model.arch = 'translate', 'seq2seq'
    set_size(c.model, a.size)
    c.data.name = 'bible_en_es'
    c.data.source_key, c.data.target_key = 'en', 'es'
    c.data.vocab_path = 'artifacts/bible_en_es.spm.model'
    # Training pairs are cut to 64 pieces (2.8% of them are longer; mean 31), and batches of
    # similar lengths are cut to their longest pair (the translate task groups them). Decoding
    # reads sources and writes translations up to model.max_len.
    c.data.seq_len = 64
    c.model.max_len = 96
    c.model.dropout = 0.0  # 0.1 costs 22% of a step here; 3600 steps with it: val loss 3.14 (vs 2.82)
    # Not better in this budget either (validation BLEU on the bible_en_es 1.0.0 splits, README):
    # loss.label_smoothing=0.1, a 4000-piece vocabulary, d_model 192, 3+3 layers.
    c.batch_size = 64
    c.eval_batch_size = 64
    c.total_steps = 4400
    c.log_every = 50
    c.eval_every = 400
    c.checkpoint_every = 400
    c.optim.lr = 2e-3
    c.optim.warmup_steps = 200
    c.sample.prompts = ()
    c.evals.task = dict(type='task')  # validation loss, perplexity and token accuracy
    c.evals.beam = dict(type='translate', split='test', every=0, beam=a.beam, alpha=a.alpha, bootstrap=1000)
    c.evals.beam4 = dict(
        type='translate', split='test', every=0, beam=4, alpha=a.alpha, baselines=False, bootstrap=1000
    )
    c.evals.greedy = dict(type='translate', split='test', every=0, beam=1, baselines=False, bootstrap=1000)
    if a.runlocal:
        c.batch_size, c.eval_batch_size, c.total_steps = 8, 8, 10
        c.log_every, c.eval_every, c.checkpoint_every = 5, 10, 10
        c.data.seq_len = c.model.max_len = 32
        c.optim.warmup_steps = 2
        for name in ('beam', 'beam4', 'greedy'):  # the first 64 test verses (of 2,091)
            c.evals[name].update(bootstrap=10, max_examples=64)
    return c
