"""BBC News topics (5 classes): zero-shot, few-shot and fine-tuned models in one table.

python -m research.sweep --config experiments/fewshot/bbc_news.py --workdir runs/fewshot_bbc
python -m research.sweep --config experiments/fewshot/bbc_news.py:runlocal --workdir runs/fewshot_local

Needs `make data` (BBC News + its word vocab). Every number is on the test split; all
settings (label texts, templates, steps, the probe's L2) were fixed before any test number
was seen. Point axes: `model`, `method`, `k` (training examples per class), `seed`.

- model=minilm (all-MiniLM-L6-v2, imported): `zero_shot` (cosine similarity to the class
  names, to a template around them, to lists of descriptions), `probe` (logistic regression
  on frozen mean-pooled features, 3 k-shot draws inside the point), `finetune` (k-shot,
  the whole model), `contrastive` (SetFit: pairs from the k-shot set tune the encoder, then
  the probe), `full` (all 1,764 training articles, 3 epochs).
- model=mlm (our tiny word-level BERT, MLM-pretrained on BBC train by the `pretrain=mlm`
  point): `cloze` zero-shot, `probe`, `finetune`.
- model=gpt (our tiny GPT, pretrained by the `pretrain=gpt` point): `zero_shot` choice of
  the label word after a prompt, `in_context` with k demonstrations per class.
- model=bag: the bag-of-embeddings classifier trained on all of train (the floor).

A point is also an ordinary run: python -m research.main --config
'experiments/fewshot/bbc_news.py:model=minilm,method=finetune,k=4,seed=0' --workdir DIR.
"""

import math
import os

from research.config import load_config, parse_arg
from research.sweep import product

HERE = os.path.dirname(os.path.abspath(__file__))
EXPERIMENTS = os.path.dirname(HERE)
REPORT = dict(
    objective='accuracy',
    split='test',
    pivot='k',
    columns=('accuracy', 'macro_f1', 'accuracy_norm', 'accuracy_calibrated', 'perplexity'),
)

NAMES = ('business', 'entertainment', 'politics', 'sports', 'tech')
DESCRIPTIONS = (
    ('business', ('business and the economy', 'companies, markets and finance', 'banks, shares and profits')),
    ('entertainment', ('entertainment', 'films, music and television', 'actors, singers and awards')),
    ('politics', ('politics', 'the government, elections and parliament', 'politicians and political parties')),
    ('sports', ('sports', 'football, rugby, tennis and athletics', 'matches, players and championships')),
    ('tech', ('technology', 'computers, the internet and software', 'mobile phones, gadgets and video games')),
)
WORDS = tuple(zip(NAMES, ('business', 'entertainment', 'politics', 'sport', 'technology')))  # LM verbalizers


def _base(name: str, arg: str = ''):
    c = load_config(os.path.join(EXPERIMENTS, name) + (f':{arg}' if arg else ''))
    if name == 'quickstart.py':  # the GPT of the README table: measured with a learned position
        c.model.positions = 'learned'  # table, before the quickstart moved to rotary positions
    return c


def get_config(arg=''):
    a = parse_arg(arg, model='minilm', method='zero_shot', k=0, seed=0, pretrain='', runlocal=False)
    small = 'runlocal' if a.runlocal else ''
    if a.pretrain:  # the models of rows mlm and gpt, trained by the sweep's first points
        c = _base('pretrain/mlm.py' if a.pretrain == 'mlm' else 'quickstart.py', small)
        if a.pretrain == 'gpt':
            c.data.seq_len = c.model.max_len = 64 if a.runlocal else 256  # room for in-context demonstrations
            c.sample.prompts = ()
        c.data.eval_split = 'validation'
        return c
    if a.model == 'minilm':
        c = _base('finetune/bbc_news.py')
        c.data.seq_len = 64 if a.runlocal else 128
    elif a.model == 'mlm':
        c = _base('finetune/bbc_news_tiny.py', 'init=')
        c.data.seq_len = 64 if a.runlocal else 128  # the pretraining length: positions beyond it are untrained
        c.init_from = 'runs/bbc_mlm'  # the sweep points set it to their pretrain=mlm point
    elif a.model == 'gpt':
        c = _base('quickstart.py')
        c.data.seq_len = c.model.max_len = 64 if a.runlocal else 256
        c.init_from = 'runs/quickstart'  # the sweep points set it to their pretrain=gpt point
    else:
        c = _base('classify/bbc_news_bag.py', small)
    c.seed = c.data.seed = c.data.subset_seed = a.seed
    c.data.eval_split = 'test'
    c.eval_every, c.log_every, c.progress_bar = 0, 10, False
    c.checkpoint_every = 10_000
    if a.method in ('zero_shot', 'cloze', 'probe', 'in_context'):  # no training
        c.total_steps = 0
    probe = dict(type='probe', k=a.k, seeds=(0, 1) if a.runlocal else (0, 1, 2), every=0)
    if a.method == 'zero_shot' and a.model == 'minilm':
        c.evals.names = dict(type='zero_shot_similarity')
        c.evals.template = dict(type='zero_shot_similarity', template='This news article is about {label}.')
        c.evals.descriptions = dict(type='zero_shot_similarity', labels=DESCRIPTIONS)
    elif a.method == 'zero_shot':  # gpt
        c.evals.choice = dict(type='zero_shot_choice', labels=WORDS, max_text_tokens=48)
    elif a.method == 'in_context':
        c.evals.in_context = dict(
            type='in_context',
            k=a.k,
            seeds=(0, 1) if a.runlocal else (0, 1, 2),
            labels=WORDS,
            max_text_tokens=48,
            demo_tokens=16,
        )
    elif a.method == 'cloze':
        c.task, c.model.arch = 'mlm', 'bert'
        c.evals.cloze = dict(type='zero_shot_cloze', labels=WORDS, template='{text} this article is about [MASK] .')
    elif a.method == 'probe':
        c.evals.probe = probe
    elif a.method == 'contrastive':
        c.task = 'contrastive'
        c.data.train_examples_per_class, c.data.pair_rounds = a.k, 20
        c.batch_size = 16
        c.total_steps = max(4, min(math.ceil(2 * 20 * 5 * a.k / c.batch_size), 6 if a.runlocal else 100))
        c.optim.update(lr=2e-5, warmup_steps=c.total_steps // 10)
        c.evals.probe = dict(probe, seeds=(a.seed,))  # the probe on the tuned encoder, same k-shot draw
    elif a.method == 'finetune':
        c.data.train_examples_per_class = a.k
        c.batch_size = min(16, 5 * a.k)
        epochs = 20 if a.model != 'bag' else 40
        c.total_steps = max(20, min(math.ceil(epochs * 5 * a.k / c.batch_size), 200))
        if a.runlocal:
            c.total_steps = 8
        c.optim.warmup_steps = c.total_steps // 10
        c.evals.task = dict(type='task')
    elif a.method == 'full':
        c.evals.task = dict(type='task')
        if a.runlocal:
            c.total_steps, c.optim.warmup_steps = 6, 1
    else:
        raise ValueError(f'unknown method {a.method!r}')
    return c


def get_sweep(arg=''):
    """The points, in an order that trains the pretrained models first. The sweep's own
    argument (`runlocal`: fewer points, each shorter) reaches every point's get_config too."""
    a = parse_arg(arg, runlocal=False)
    cache = {'evals.probe.cache_dir': '{sweep}/features'}  # MiniLM features shared across points
    mlm, gpt = dict(init_from='{sweep}/pretrain=mlm'), dict(init_from='{sweep}/pretrain=gpt')
    points = [dict(pretrain='gpt'), dict(pretrain='mlm'), dict(model='minilm', method='zero_shot')]
    if a.runlocal:
        return (
            points
            + [dict(model='minilm', method='probe', k=k, **cache) for k in (1, 4)]
            + product(model=['minilm'], method=['finetune'], k=[4], seed=[0, 1])
            + [dict(model='minilm', method='contrastive', k=4, seed=0), dict(model='minilm', method='full', seed=0)]
            + [dict(model='mlm', method='cloze', **mlm), dict(model='mlm', method='probe', k=4, **mlm)]
            + [dict(model='mlm', method='finetune', k=4, seed=0, **mlm)]
            + [dict(model='gpt', method='zero_shot', **gpt), dict(model='gpt', method='in_context', k=1, **gpt)]
            + product(model=['bag'], method=['full'], seed=[0, 1])
        )
    seeds, ks = (0, 1, 2), (1, 4, 16, 64)
    points += [dict(model='minilm', method='probe', k=k, **cache) for k in ks]
    points += product(model=['minilm'], method=['finetune'], k=ks, seed=seeds)
    points += product(model=['minilm'], method=['contrastive'], k=(4, 16), seed=seeds)
    points += product(model=['minilm'], method=['full'], seed=seeds)
    points += [dict(model='mlm', method='cloze', **mlm)]
    points += [dict(model='mlm', method='probe', k=k, **mlm) for k in ks]
    points += [dict(p, **mlm) for p in product(model=['mlm'], method=['finetune'], k=ks, seed=seeds)]
    points += [dict(model='gpt', method='zero_shot', **gpt)]
    points += [dict(model='gpt', method='in_context', k=k, **gpt) for k in (1, 4)]
    points += product(model=['bag'], method=['full'], seed=seeds)
    return points
