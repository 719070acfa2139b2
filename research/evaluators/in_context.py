"""`in_context`: few-shot prompting of a decoder LM, scored like `zero_shot_choice`.

For each seed, k demonstrations per class are drawn from the training split (balanced;
research/data/subset.py) and shuffled; each is the template filled with its text (cut to
`demo_tokens`) and its label, and they precede the example's own prompt. When the whole
context is too long it is cut from the left, so the earliest demonstrations go first: the
metric `demonstrations` is the mean number of whole demonstrations the model saw, next to
k * classes asked for. Reports mean and standard deviation over seeds of accuracy and
macro-F1, summed, length-normalised (`_norm`) and calibrated (`_calibrated`, the
demonstrations followed by an empty text as the reference).
"""

import numpy as np

from research.data import subset
from research.evaluators import choice, common
from research.schema import ConfigError


class Evaluator(choice.Evaluator):
    def __init__(
        self, ctx, name, *, k: int = 1, seeds: tuple = (0, 1, 2), demo_tokens: int = 24, train_split: str = '', **kw
    ):
        super().__init__(ctx, name, **kw)
        self.k, self.seeds, self.demo_tokens = k, tuple(seeds), demo_tokens
        texts, labels = common.labelled_texts(ctx.config, train_split or ctx.config.data.train_split)
        self.demos = []
        for seed in self.seeds:  # drawn now: a k larger than a class fails before anything runs
            chosen = subset.k_per_class(labels, k, seed, ctx.task.class_names())
            chosen = np.random.default_rng([seed, 99]).permutation(chosen)
            self.demos.append([self.demo(texts[i], labels[i]) for i in chosen])

    @classmethod
    def check(cls, config, name, options):
        super().check(config, name, options)
        if options['k'] < 1 or not options['seeds']:
            raise ConfigError(f'config.evals.{name}: k must be >= 1 and seeds non-empty')
        common.check_disjoint(config, name, options)

    def demo(self, text: str, label: int) -> list:
        """One demonstration's ids: the template with its text (cut) and its label."""
        return (
            self.encode(self.before)
            + self.encode(text)[: self.demo_tokens]
            + self.encode(self.between)
            + self.encode(self.verbalizers[label] + self.after)
        )

    def run(self, params):
        contexts, continuations = zip(*[self.parts(t) for t in self.texts])
        results, kept = [], []
        for demos in self.demos:
            prefix = [i for d in demos for i in d]
            starts = np.cumsum([0] + [len(d) for d in demos[:-1]])  # where each demonstration begins
            for context, conts in zip(contexts, continuations):
                cut = max(0, len(prefix) + len(context) - self.room(conts))
                kept.append(int(np.sum(starts >= cut)))
            results.append(self.metrics(params, contexts, continuations, prefix))
        return {**common.mean_and_std(results, self.prefix), f'{self.prefix}demonstrations': float(np.mean(kept))}
