"""WordNet supersense of a target word in context (45 classes, lemma-disjoint splits):
zero-shot, few-shot and fine-tuned all-MiniLM-L6-v2 in one table.

python -m research.sweep --config experiments/fewshot/wordnet.py --workdir runs/fewshot_wordnet
Needs `make system-deps data-wordnet`. Test numbers; settings fixed in advance. Axes:
`method`, `k` (training sentences per supersense; the rarest supersense, noun.motive, has
12 in train, so k <= 12), `seed`.

- `zero_shot`: cosine between the target word's contextual embedding (pooling='target')
  or the sentence's mean embedding and a short description of each supersense.
- `probe`: logistic regression on the frozen target-word embedding (3 draws per point).
- `finetune`: k-shot fine-tuning of the whole model (task `tag`); `full`: all 37,709
  training sentences for one epoch. The task evaluator also reports the baselines:
  majority, WordNet's own most frequent supersense of the lemma, the oracle per-lemma one.
"""

import math
import os

from research.config import load_config, parse_arg
from research.sweep import product

REPORT = dict(
    objective='accuracy', split='test', pivot='k', columns=('accuracy', 'macro_f1', 'stored_baseline_accuracy')
)
FINETUNE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'finetune', 'wordnet.py')

# One short gloss per lexicographer file, written for this experiment (WordNet's lexnames
# gives the files' names and topics).
DESCRIPTIONS = (
    ('adj.all', 'a property or quality'),
    ('adj.pert', 'relating to something'),
    ('adv.all', 'the manner or degree of an action'),
    ('noun.Tops', 'a very general concept or entity'),
    ('noun.act', 'an act, action or activity'),
    ('noun.animal', 'an animal'),
    ('noun.artifact', 'a man-made object'),
    ('noun.attribute', 'an attribute or property'),
    ('noun.body', 'a part of the body'),
    ('noun.cognition', 'a thought, idea or knowledge'),
    ('noun.communication', 'communication, language or a message'),
    ('noun.event', 'an event or happening'),
    ('noun.feeling', 'a feeling or emotion'),
    ('noun.food', 'food or drink'),
    ('noun.group', 'a group of people or things'),
    ('noun.location', 'a place or location'),
    ('noun.motive', 'a goal, reason or motive'),
    ('noun.object', 'a natural object'),
    ('noun.person', 'a person'),
    ('noun.phenomenon', 'a natural phenomenon'),
    ('noun.plant', 'a plant'),
    ('noun.possession', 'money, property or possession'),
    ('noun.process', 'a natural process'),
    ('noun.quantity', 'a quantity, amount or unit'),
    ('noun.relation', 'a relation between things'),
    ('noun.shape', 'a shape or form'),
    ('noun.state', 'a state or condition'),
    ('noun.substance', 'a substance or material'),
    ('noun.time', 'a time or period'),
    ('verb.body', 'to groom, dress or care for the body'),
    ('verb.change', 'to change something'),
    ('verb.cognition', 'to think, judge or believe'),
    ('verb.communication', 'to speak, tell or ask'),
    ('verb.competition', 'to fight, compete or play'),
    ('verb.consumption', 'to eat, drink or use up'),
    ('verb.contact', 'to touch, hit or hold'),
    ('verb.creation', 'to make or create something'),
    ('verb.emotion', 'to feel an emotion'),
    ('verb.motion', 'to move, walk or travel'),
    ('verb.perception', 'to see, hear or perceive'),
    ('verb.possession', 'to have, buy, sell or give'),
    ('verb.social', 'to take part in social life'),
    ('verb.stative', 'to be or stay in a state'),
    ('verb.weather', 'to rain, snow or shine'),
    ('adj.ppl', 'a participle used as an adjective'),
)


def get_config(arg=''):
    a = parse_arg(arg, method='zero_shot', k=0, seed=0, runlocal=False)
    c = load_config(FINETUNE + ':label=supersense')
    c.seed = c.data.seed = c.data.subset_seed = a.seed
    c.data.eval_split = 'test[:300]' if a.runlocal else 'test'
    c.eval_every, c.log_every, c.progress_bar, c.checkpoint_every = 0, 20, False, 10_000
    if a.method in ('zero_shot', 'probe'):
        c.total_steps = 0
    if a.method == 'zero_shot':
        c.evals.target = dict(type='zero_shot_similarity', labels=DESCRIPTIONS, pooling='target')
        c.evals.sentence = dict(type='zero_shot_similarity', labels=DESCRIPTIONS, pooling='mean')
    elif a.method == 'probe':
        c.evals.probe = dict(type='probe', k=a.k, seeds=(0, 1) if a.runlocal else (0, 1, 2), pooling='target')
    elif a.method == 'finetune':
        c.data.train_examples_per_class = a.k
        c.batch_size = 32
        c.total_steps = 6 if a.runlocal else max(30, min(math.ceil(20 * 45 * a.k / c.batch_size), 300))
        c.optim.warmup_steps = c.total_steps // 10
        c.evals.task = dict(type='task')
    elif a.method == 'full':
        c.total_steps = 6 if a.runlocal else 1178  # one epoch
        c.evals.task = dict(type='task')
    else:
        raise ValueError(f'unknown method {a.method!r}')
    return c


def get_sweep(arg=''):
    a = parse_arg(arg, runlocal=False)
    seeds, ks = ((0,), (1, 4)) if a.runlocal else ((0, 1, 2), (1, 4, 12))
    cache = {'evals.probe.cache_dir': '{sweep}/features'}
    return (
        [dict(method='zero_shot')]
        + [dict(method='probe', k=k, **cache) for k in ks]
        + product(method=['finetune'], k=ks, seed=seeds)
        + [dict(method='full', seed=0)]
    )
