"""`translate`: translates a split (greedy for beam 1, else beam search) and scores the
detokenized output against the references with sacrebleu's corpus BLEU and chrF.

Metrics `<split>/<name>/bleu`, `chrf`, `length_ratio` (hypothesis / reference length in
BLEU's tokens) and, with `bootstrap` resamples, their 95% intervals (`bleu_low`, `bleu_high`,
…); with `baselines`, the same scores of copying the source (`copy_bleu`, …) and of a
word-for-word dictionary learned from (at most the first 100,000) training pairs
(`dictionary_bleu`, …), computed once, and with both, the paired bootstrap comparison of the
model with each baseline on the same resampled sentences: the difference, its interval and
the fraction of resamples the model wins (`vs_dictionary_bleu`, `…_bleu_low`, `…_bleu_high`,
`…_bleu_wins`; the same for chrF). The sacrebleu signature goes to the log, and every run writes
WORKDIR/translations/<split>_<name>.tsv (source, reference, hypothesis). Sources are read
and translations written up to model.max_len pieces; row r's translation has at most
max_len_a * (its source length) + max_len_b pieces, <eos> included.
"""

import collections
import os

import jax

from research.data import translate as translate_data
from research.evaluators import common
from research.schema import ConfigError
from research.text import bleu

DICTIONARY_PAIRS = 100_000  # the dictionary baseline learns from at most this many training pairs


class Evaluator(common.Evaluator):
    needs = frozenset({'translate'})

    def __init__(
        self,
        ctx,
        name,
        *,
        beam: int = 4,
        alpha: float = 0.6,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        max_examples: int = 0,
        bootstrap: int = 0,
        baselines: bool = True,
        **kw,
    ):
        super().__init__(ctx, name, **kw)
        c, vocab = ctx.config, ctx.vocab
        pairs = translate_data.read_pairs(c, self.split, collections.Counter())
        pairs = pairs[:max_examples] if max_examples else pairs
        self.sources, self.references = [s for s, _ in pairs], [r for _, r in pairs]
        self.arrays = translate_data.encode_sources(vocab, self.sources, c.model.max_len)
        self._translate = ctx.jit(ctx.task.translate(vocab, beam=beam, alpha=alpha, a=max_len_a, b=max_len_b))
        self.bootstrap, self.with_baselines, self.baselines = bootstrap, baselines, None

    @classmethod
    def check(cls, config, name, options):
        for key, low in (('beam', 1), ('max_len_a', 0), ('max_len_b', 1), ('max_examples', 0), ('bootstrap', 0)):
            if options[key] < low:
                raise ConfigError(f'config.evals.{name}.{key}={options[key]} must be >= {low}')
        if options['alpha'] < 0:
            raise ConfigError(f'config.evals.{name}.alpha={options["alpha"]} must be >= 0 (0: no length penalty)')

    def run(self, params):
        tokens = self.ctx.predict(self._translate, params, self.arrays, self.batch_size, desc=self.name)
        hypotheses = [self.ctx.vocab.decode(row) for row in tokens]
        self.write_tsv(hypotheses)
        scores, signature, samples = bleu.scores(hypotheses, self.references, self.bootstrap)
        self.ctx.log(f'{self.prefix}sacrebleu signature: {signature}')
        out = {f'{self.prefix}{k}': v for k, v in scores.items()}
        if not self.with_baselines:
            return out
        for system, (base, base_samples) in self.baseline_scores().items():
            out.update({f'{self.prefix}{system}_{k}': v for k, v in base.items()})
            if self.bootstrap:  # the same resamples (seed 0) as the model's
                comparison = bleu.paired(scores, samples, base, base_samples)
                out.update({f'{self.prefix}vs_{system}_{k}': v for k, v in comparison.items()})
        return out

    def baseline_scores(self) -> dict:
        """{system: (scores, bootstrap samples)} of the baselines, computed once."""
        if self.baselines is None:
            c = self.ctx.config
            train = translate_data.read_pairs(c, c.data.train_split, collections.Counter(), DICTIONARY_PAIRS)
            dictionary = bleu.WordDictionary(train)
            self.baselines = {}
            for system, hypotheses in (
                ('copy', self.sources),
                ('dictionary', [dictionary.translate(s) for s in self.sources]),
            ):
                scores, _, samples = bleu.scores(hypotheses, self.references, self.bootstrap)
                self.baselines[system] = (scores, samples)
        return self.baselines

    def write_tsv(self, hypotheses: list):
        """WORKDIR/translations/<split>_<name>.tsv (process 0); tabs and newlines become spaces."""
        if jax.process_index() != 0:
            return
        path = os.path.join(self.ctx.workdir, 'translations', self.prefix.strip('/').replace('/', '_') + '.tsv')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write('source\treference\thypothesis\n')
            for row in zip(self.sources, self.references, hypotheses):
                f.write('\t'.join(' '.join(t.split()) for t in row) + '\n')
