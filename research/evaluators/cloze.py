"""`zero_shot_cloze`: a masked LM fills in the label ("{text} this is about [MASK] .").

Per example and class, the label's pieces replace the [MASK] slot as that many mask tokens,
and the class scores the mean log-probability of its pieces at their positions (one piece:
its log-probability). The text is cut so the row fits data.seq_len with the longest label,
so every class sees the same text.
"""

from research.evaluators import common
from research.schema import ConfigError
from research.text import vocab as vocab_lib

SLOT = '[MASK]'


class Evaluator(common.Evaluator):
    needs = frozenset({'masked_token_logits'})

    def __init__(self, ctx, name, *, template: str = '{text} this is about [MASK] .', labels: tuple = (), **kw):
        super().__init__(ctx, name, **kw)
        self.encode = common.word_encoder(ctx.config, ctx.vocab)
        self.template = template
        before, between, after = common.template_parts(template, '{text}', SLOT)
        self.head, self.between, self.tail = self.encode(before), self.encode(between), self.encode(after)
        self.label_ids = []
        for texts in common.label_texts(ctx.task.class_names(), labels):
            ids = self.encode(texts[0])
            if len(texts) != 1 or not ids or vocab_lib.UNK_ID in ids:
                raise ConfigError(
                    f'config.evals.{name}.labels: {texts} must be one text per class, made of '
                    f'known tokens (got ids {ids}); choose label words in the vocabulary'
                )
            self.label_ids.append(ids)
        fixed = len(self.head) + len(self.between) + max(map(len, self.label_ids)) + len(self.tail)
        self.room = ctx.config.data.seq_len - fixed
        if self.room < 1:
            raise ConfigError(f'config.evals.{name}.template {template!r} leaves no room for text in data.seq_len')
        logits = ctx.task.masked_token_logits(ctx.vocab)
        self.scorer = common.LogProbScorer(ctx, logits, ctx.config.data.seq_len, self.batch_size)
        self.texts, self.labels = common.labelled_texts(ctx.config, self.split)

    @classmethod
    def check(cls, config, name, options):
        template, where = options['template'], f'config.evals.{name}.template'
        common.check_template(template.replace(SLOT, ''), where, ('text',))
        if template.count(SLOT) != 1 or template.index('{text}') > template.index(SLOT):
            raise ConfigError(f'{where}={template!r} needs one {SLOT} after {{text}}')

    def rows(self, text: str) -> list:
        text_ids = self.encode(text)[: self.room]
        start = len(self.head) + len(text_ids) + len(self.between)  # the first mask
        rows = []
        for label in self.label_ids:
            inputs = self.head + text_ids + self.between + [vocab_lib.MASK_ID] * len(label) + self.tail
            targets = list(inputs)
            targets[start : start + len(label)] = label
            weights = [0.0] * len(inputs)
            weights[start : start + len(label)] = [1.0 / len(label)] * len(label)
            rows.append((inputs, targets, weights))
        return rows

    def run(self, params):
        rows = [row for text in self.texts for row in self.rows(text)]
        scores = self.scorer(params, rows, desc=self.name).reshape(len(self.texts), -1)
        return self.classification(self.labels, scores)
