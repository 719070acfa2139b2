"""`zero_shot_cloze`: a masked LM fills in the label ("{text} This is about [MASK].").

Per example and class, the label's pieces replace the [MASK] slot as that many mask tokens,
and the class scores the mean log-probability of its pieces at their positions (one piece:
its log-probability). The text is cut so the whole row fits data.seq_len; a WordPiece
vocabulary adds [CLS] … [SEP] around it, as in pretraining.
"""

from research.config import ConfigError
from research.evaluators import common
from research.text import vocab as vocab_lib

SLOT = '[MASK]'


class Evaluator(common.Evaluator):
    def __init__(self, ctx, name, *, template: str = '{text} this is about [MASK] .', labels: tuple = (), **kw):
        super().__init__(ctx, name, **kw)
        common.require_task(ctx, ('mlm',), name, 'cloze scoring needs a masked language model')
        config, vocab = ctx.config, ctx.vocab
        self.encode = common.text_encoder(config, vocab)
        wordpiece = config.data.tokenizer == 'wordpiece'
        self.mask_id = vocab.mask_id if wordpiece else vocab_lib.MASK_ID
        self.wrap = ([vocab.cls_id], [vocab.sep_id]) if wordpiece else ([], [])
        unk = vocab.unk_id if wordpiece else vocab_lib.UNK_ID
        self.template = template
        self.label_ids = []
        for texts in common.label_texts(ctx.task.class_names(), labels):
            ids = self.encode(texts[0])
            if len(texts) != 1 or not ids or unk in ids:
                raise ConfigError(
                    f'config.evals.{name}.labels: {texts} must be one text per class, made of '
                    f'known tokens (got ids {ids}); choose label words in the vocabulary'
                )
            self.label_ids.append(ids)
        self.scorer = common.LogProbScorer(ctx, config.data.seq_len, self.batch_size)

    @classmethod
    def check(cls, config, name, options):
        template = options.get('template', '{text} [MASK]')
        where = f'config.evals.{name}.template'
        common.check_template(template.replace(SLOT, ''), where, ('text',))
        if template.count(SLOT) != 1 or template.index('{text}') > template.index(SLOT):
            raise ConfigError(f'{where}={template!r} needs one {SLOT} after {{text}}')

    def rows(self, text: str) -> list:
        before, rest = self.template.split('{text}')
        between, after = rest.split(SLOT)
        head, tail = self.wrap[0] + self.encode(before), self.encode(after) + self.wrap[1]
        text_ids = self.encode(text)
        rows = []
        for label in self.label_ids:
            room = self.ctx.config.data.seq_len - len(head) - len(self.encode(between)) - len(label) - len(tail)
            if room < 0:
                raise ConfigError(f'template {self.template!r} leaves no room for text in data.seq_len')
            start = len(head) + min(room, len(text_ids)) + len(self.encode(between))
            inputs = head + text_ids[:room] + self.encode(between) + [self.mask_id] * len(label) + tail
            targets = list(inputs)
            targets[start : start + len(label)] = label
            weights = [0.0] * len(inputs)
            weights[start : start + len(label)] = [1.0 / len(label)] * len(label)
            rows.append((inputs, targets, weights))
        return rows

    def run(self, params):
        texts, labels = common.labelled_texts(self.ctx.config, self.split)
        rows = [row for text in texts for row in self.rows(text)]
        scores = self.scorer(params, rows, desc=self.name).reshape(len(texts), -1)
        return self.classification(labels, scores)
