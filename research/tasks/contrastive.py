"""SetFit-style contrastive fine-tuning of a sentence encoder on a few labelled texts.

From the k-shot training subset (data.train_examples_per_class, data.subset_seed) it builds
same-class and different-class pairs (data.pair_rounds rounds; research/data/subset.py) and
trains the encoder so that the cosine of two pooled embeddings (model.pooling) matches 1
for a same-class pair and 0 otherwise (mean squared error). Nothing else changes: the one
trainer runs it, and a `probe` evaluator with the same k and seed then fits a classifier on
the tuned embeddings -- the SetFit recipe. Params are {'encoder'}, so `init_from='hf:…'`
loads e.g. MiniLM. Evaluation pairs come from the evaluated split (one round, a fixed seed).
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from research import flops
from research.data import subset
from research.models import paths
from research.models.encoder import pool
from research.schema import need
from research.tasks.classify import Classify, build_encoder


class PairEncoder(nn.Module):
    """Two texts -> cosine of their pooled embeddings [B] (params: 'encoder')."""

    encoder: nn.Module
    pooling: str

    @nn.compact
    def __call__(self, tokens_a, mask_a, tokens_b, mask_b, *, train: bool = False):
        def embed(tokens, mask):
            e = pool(self.encoder(tokens, mask, train=train), mask, self.pooling).astype(jnp.float32)
            return e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)

        return jnp.sum(embed(tokens_a, mask_a) * embed(tokens_b, mask_b), axis=-1)


def pair_arrays(arrays: dict, labels, rounds: int, seed: int) -> dict:
    a, b, same = subset.pairs(labels, rounds, seed)
    return {
        'inputs_a': arrays['ids'][a],
        'mask_a': arrays['mask'][a],
        'inputs_b': arrays['ids'][b],
        'mask_b': arrays['mask'][b],
        'labels': same,
    }


class Contrastive(Classify):
    name = 'contrastive'
    headline = 'loss'
    baseline = ''

    @classmethod
    def check(cls, config):
        super().check(config)
        need(not config.loss.label_smoothing, 'config.loss.label_smoothing: the contrastive task has no classes; set 0')

    def build_model(self, vocab_size: int) -> PairEncoder:
        return PairEncoder(build_encoder(self.config, vocab_size), self.config.model.pooling)

    def dummy_inputs(self):
        return super().dummy_inputs() * 2

    def train_data(self, vocab, rows, state):
        d = self.config.data
        arrays = self.train_subset(vocab)
        pairs = pair_arrays(arrays, self.example_labels(arrays), d.pair_rounds, d.subset_seed)
        return self.iterator(pairs, np.ones(2, np.float32), vocab, rows, state)

    def eval_arrays(self, vocab, split):
        def make():
            arrays = self.encode(vocab, split, train=False)[0]
            return pair_arrays(arrays, self.example_labels(arrays), 1, 0)  # the same pairs for every run

        return self.cached(('pairs', split), make), self.encode(vocab, split, train=False)[1]

    def eval_batch(self, vocab, rows):
        batch = {k: v for k, v in rows.items() if k not in ('valid', 'index')}
        return dict(batch, weights=rows['valid'].astype(np.float32))

    def baselines(self, vocab, split):
        return {}

    def loss(self, model, params, batch, rng, train):
        """Squared error between the cosine and same-class (1) / different-class (0)."""
        cos = model.apply(
            {'params': params},
            batch['inputs_a'],
            batch['mask_a'],
            batch['inputs_b'],
            batch['mask_b'],
            train=train,
            rngs={'dropout': rng},
        )
        w, target = batch['weights'], batch['labels'].astype(jnp.float32)
        loss_sum = jnp.sum(w * (cos - target) ** 2)
        correct = jnp.sum(w * ((cos > 0.5) == (target > 0.5)))
        return loss_sum, dict(loss=loss_sum, correct=correct, weight=jnp.sum(w))

    def summarize(self, sums):
        weight = float(sums['weight'])
        if not weight:
            return {'loss': float('nan'), 'pair_accuracy': float('nan')}
        return {'loss': float(sums['loss']) / weight, 'pair_accuracy': float(sums['correct']) / weight}

    def flops_per_token(self, params):
        c = self.model_config(paths.vocab_size(params))
        return 2 * flops.train_flops_per_token(c, self.config.data.seq_len)  # a batch row is two texts; no head
