"""`zero_shot_choice`: a decoder LM picks the label whose verbalizer is most likely.

Each example becomes, per class, `template` with {text} and {label} filled: the tokens
before {label} are the context, the label and what follows are the continuation, scored as
the sum of their log-probabilities (`accuracy`) and that sum divided by their number
(`accuracy_norm`, length-normalised). The text is cut to `max_text_tokens` (0: no cut) and
the context from the left so the sequence fits `max_len` (default data.seq_len) after the
<eos> document separator -- the same context for every class (room for the longest
continuation). Context and continuation are tokenized on their own, and every example is
checked to tokenize the same as one string (the join is exact), so the scored tokens are
what the model would read; the first example is checked when the evaluator is built.
`accuracy_calibrated` subtracts each label's log-probability after the template with an
empty text (contextual calibration, Zhao et al. 2021): a small LM's preference for one
label word regardless of the text cancels out.
"""

import numpy as np

from research.evaluators import common
from research.schema import ConfigError
from research.text import vocab as vocab_lib


class Evaluator(common.Evaluator):
    needs = frozenset({'next_token_logits'})

    def __init__(
        self,
        ctx,
        name,
        *,
        template: str = '{text} this article is about {label}',
        labels: tuple = (),
        max_text_tokens: int = 0,
        max_len: int = 0,
        **kw,
    ):
        super().__init__(ctx, name, **kw)
        self.template, self.max_text_tokens = template, max_text_tokens
        self.before, self.between, self.after = common.template_parts(template, '{text}', '{label}')
        self.max_len = max_len or ctx.config.data.seq_len
        self.encode = common.word_encoder(ctx.config, ctx.vocab)
        texts = common.label_texts(ctx.task.class_names(), labels)
        if any(len(t) != 1 for t in texts):
            raise ConfigError(f'config.evals.{name}.labels: one verbalizer text per class')
        self.verbalizers = [t[0] for t in texts]
        self.scorer = common.LogProbScorer(ctx, ctx.task.next_token_logits(ctx.vocab), self.max_len, self.batch_size)
        self.texts, self.labels = common.labelled_texts(ctx.config, self.split)
        self.rows(*self.parts(self.texts[0]))  # a bad join or a label that cannot fit fails now

    @classmethod
    def check(cls, config, name, options):
        template = options['template']
        common.check_template(template, f'config.evals.{name}.template', ('text', 'label'))
        if template.index('{text}') > template.index('{label}'):
            raise ConfigError(f'config.evals.{name}.template={template!r}: {{text}} must come before {{label}}')
        if options['max_len'] > config.model.max_len:
            raise ConfigError(
                f'config.evals.{name}.max_len={options["max_len"]} exceeds config.model.max_len='
                f'{config.model.max_len} (positions the model does not have)'
            )

    def parts(self, text: str) -> tuple[list, list]:
        """(context ids, [continuation ids per class]) of one example, the join checked."""
        head, between = self.encode(self.before), self.encode(self.between)
        text_ids = self.encode(text)
        context = head + text_ids[: self.max_text_tokens or None] + between
        continuations = [self.encode(v + self.after) for v in self.verbalizers]
        for verbalizer, cont in zip(self.verbalizers, continuations):
            whole = self.encode(self.before + text + self.between + verbalizer + self.after)
            if whole != head + text_ids + between + cont:
                raise ConfigError(
                    f'template {self.template!r} with label {verbalizer!r} does not tokenize the '
                    f'same in parts and whole (the context/continuation join); put a space '
                    f'before {{label}}'
                )
        return context, continuations

    def room(self, continuations: list) -> int:
        """Context tokens that fit beside <eos> and the longest continuation."""
        room = self.max_len - max(len(c) for c in continuations)
        if room < 0:
            raise ConfigError(
                f'a label continuation of {self.max_len - room} tokens does not fit max_len {self.max_len}'
            )
        return room

    def rows(self, context: list, continuations: list) -> list:
        """Scored rows: <eos> + context (cut from the left to fit) + continuation, shifted by one."""
        context = context[max(0, len(context) - self.room(continuations)) :]
        rows = []
        for cont in continuations:
            seq = [vocab_lib.EOS_ID] + context + cont
            rows.append((seq[:-1], seq[1:], [0.0] * (len(seq) - 1 - len(cont)) + [1.0] * len(cont)))
        return rows

    def score(self, params, contexts: list, continuations: list) -> tuple[np.ndarray, np.ndarray]:
        """Per example and class [N, C]: summed and length-normalised continuation log-probabilities."""
        rows = [row for context, conts in zip(contexts, continuations) for row in self.rows(context, conts)]
        sums = self.scorer(params, rows, desc=self.name).reshape(len(contexts), -1)
        lengths = np.array([[len(c) for c in conts] for conts in continuations], np.float64)
        return sums, sums / lengths

    def scores(self, params, contexts: list, continuations: list, prefix: list = ()) -> dict:
        """'' (summed), '_norm' and '_calibrated' scores [N, C]; `prefix` (demonstrations) goes
        before every context, the empty-text reference's included."""
        prefix = list(prefix)
        summed, normalised = self.score(params, [prefix + c for c in contexts], continuations)
        empty = prefix + self.encode(self.before) + self.encode(self.between)
        prior = self.score(params, [empty], continuations[:1])[0]  # continuations do not depend on the text
        return {'': summed, '_norm': normalised, '_calibrated': summed - prior}

    def metrics(self, params, contexts: list, continuations: list, prefix: list = ()) -> dict:
        """Accuracy and macro-F1 of each kind of score."""
        scores = self.scores(params, contexts, continuations, prefix)
        return {k: v for suffix, s in scores.items() for k, v in self.classification(self.labels, s, suffix).items()}

    def run(self, params):
        contexts, continuations = zip(*[self.parts(t) for t in self.texts])
        return self.metrics(params, contexts, continuations)
