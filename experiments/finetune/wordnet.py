"""Fine-tune all-MiniLM-L6-v2 to label a WordNet example sentence's target word with its
supersense (45 lexicographer files) or part of speech (4), on lemma-disjoint splits.

python -m research.tools.prepare_data --dataset wordnet_wic   # needs `apt-get install wordnet-base`
python -m research.main --config experiments/finetune/wordnet.py:label=supersense --workdir runs/wn_supersense
python -m research.main --config experiments/finetune/wordnet.py:label=pos --workdir runs/wn_pos
Test numbers: copy the finished workdir and rerun on the copy with
`--config.data.eval_split=test` (it only re-evaluates). Baselines logged with each evaluation set-up:
majority label, per-lemma most frequent training label (= majority here: the splits share
no lemma), the oracle per-lemma majority of the evaluated labels, and WordNet's own
most-frequent-sense label of the lemma (stored_baseline).
"""

import os

from research.config import base_config, parse_arg
from research.convert.hf_bert import minilm_dir


def get_config(arg=''):
    a = parse_arg(arg, label='supersense', runlocal=False)
    c = base_config()
    c.task = 'tag'
    c.model.arch = 'bert'
    c.model.update(num_layers=6, d_model=384, num_heads=12, mlp_dim=1536, max_len=512, dropout=0.1)
    c.init_from = 'hf:' + minilm_dir()
    c.data.name = 'wordnet_wic'
    c.data.tokenizer = 'wordpiece'
    c.data.vocab_path = os.path.join(minilm_dir(), 'vocab.txt')
    c.data.text_key = 'words'
    c.data.label_key = a.label  # 'supersense' or 'pos'
    c.data.group_key = 'lemma'
    c.data.baseline_key = f'mfs_{a.label}'
    c.data.seq_len = 32  # 99.9% of the sentences fit ([CLS] + pieces + [SEP]); the rest are cut
    c.batch_size = 32
    c.eval_batch_size = 128
    # 1,178 steps = 1 epoch of the 37,709 training sentences: 3 for supersenses, 1/2 for POS.
    c.total_steps = 3600 if a.label == 'supersense' else 600
    c.log_every = 20
    c.eval_every = c.checkpoint_every = c.total_steps // 3
    c.optim.lr = 1e-4
    c.optim.warmup_steps = 100
    c.optim.weight_decay = 0.01
    if a.runlocal:
        c.total_steps, c.log_every, c.eval_every, c.checkpoint_every = 4, 2, 0, 4
    return c
