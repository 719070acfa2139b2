"""`zero_shot_similarity`: a sentence encoder classifies with no training at all.

Each example's pooled embedding is compared (cosine) with each class's embedding; the most
similar class wins. A class is represented by its name, by a template around it
("This news article is about {label}.") or by a list of descriptions (the normalised mean
of their embeddings): `labels=(('business', ('companies and markets', 'the economy')), …)`
(classes left out use their names). Example pooling is `pooling` (default
config.model.pooling; 'target' = the target word's first piece, for word labels); label
texts are pooled by mean ('target' examples) or by the same pooling.
"""

import numpy as np

from research.evaluators import common


class Evaluator(common.Evaluator):
    def __init__(
        self, ctx, name, *, labels: tuple = (), template: str = '{label}', pooling: str = '', cache_dir: str = '', **kw
    ):
        super().__init__(ctx, name, **kw)
        self.pooling = pooling or ctx.config.model.pooling
        self.texts = common.label_texts(ctx.task.class_names(), labels, template)
        self.features = common.Features(ctx, self.pooling, self.batch_size, cache_dir)
        label_pooling = 'mean' if self.pooling == 'target' else self.pooling
        self.label_features = common.Features(ctx, label_pooling, self.batch_size, cache_dir)

    needs = frozenset({'pooled', 'examples', 'encode_text'})  # label texts: encoded as an example is

    @classmethod
    def needs_for(cls, config, options):
        return cls.needs | common.target_needs(config, options)

    @classmethod
    def check(cls, config, name, options):
        common.check_template(options['template'], f'config.evals.{name}.template')
        common.check_pooling(options['pooling'], f'config.evals.{name}.pooling')

    def class_embeddings(self, params) -> np.ndarray:
        """[C, D]: per class, the normalised mean of its texts' normalised embeddings."""
        flat = [t for texts in self.texts for t in texts]
        emb = common.normalize(self.label_features.of_texts(params, flat))
        ends = np.cumsum([len(texts) for texts in self.texts])
        return common.normalize(np.stack([emb[e - len(t) : e].mean(0) for e, t in zip(ends, self.texts)]))

    def run(self, params):
        examples = self.ctx.task.examples(self.ctx.vocab, self.split)
        features = self.features(params, self.split, model_key=self.features.key(params))
        scores = common.normalize(features) @ self.class_embeddings(params).T
        return self.classification(examples['labels'], scores)
