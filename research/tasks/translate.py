"""Translation: an encoder-decoder trained with teacher forcing on SentencePiece pieces."""

import collections

import jax.numpy as jnp
import numpy as np

from research import decoding, flops
from research.data import classify as classify_data
from research.data import translate as translate_data
from research.models import paths
from research.models.seq2seq import Seq2Seq
from research.tasks.base import Task
from research.tasks.lm import token_loss, token_metrics
from research.text import spm


class Translate(Task):
    name = 'translate'
    headline = 'perplexity'

    def load_vocab(self):
        return spm.SentencePiece(self.config.data.vocab_path)

    def build_model(self, vocab_size: int, decode: bool = False) -> Seq2Seq:
        return Seq2Seq(self.model_config(vocab_size, decode=decode))

    @classmethod
    def offers(cls, arch):
        return frozenset({'translate'})

    def translate(self, vocab, *, beam: int, alpha: float, a: float, b: int):
        """fn(params, batch) -> the best translations' tokens [B, model.max_len] of batch 'source' /
        'source_mask' (greedy for beam 1, else beam search; row r gets at most a * its source
        length + b tokens, <eos> included): research/decoding.py over the KV-cache model."""
        model = self.build_model(len(vocab), decode=True)
        ids = dict(max_len=self.config.model.max_len, bos_id=vocab.bos_id, eos_id=vocab.eos_id)

        def translate(params, batch):
            return decoding.translate(
                model, params, batch['source'], batch['source_mask'], beam=beam, alpha=alpha, a=a, b=b, **ids
            )

        return translate

    def dummy_inputs(self):
        shape = (1, self.config.data.seq_len)
        return jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool), jnp.zeros(shape, jnp.int32)

    def encode(self, vocab, split: str):
        """(arrays, stats) of a split, encoded once per task."""

        def make():
            stats = collections.Counter()
            return translate_data.encode_pairs(self.config, vocab, split, stats), stats

        return self.cached(('pairs', split), make)

    def train_data(self, vocab, rows, state):
        arrays, stats = self.encode(vocab, self.config.data.train_split)
        # Batches of similar lengths, cut to them: a Bible verse pair is half the padded width.
        lengths = np.maximum(arrays['source_mask'].sum(1), arrays['weights'].sum(1)).astype(np.int64)
        return classify_data.ExampleIterator(
            arrays, None, self.config.batch_size, rows, self.config.data.seed, state, stats, lengths=lengths
        )

    def eval_arrays(self, vocab, split):
        return self.encode(vocab, split)

    def eval_batch(self, vocab, rows):
        # Padding rows are all <pad>: weight 0.
        return {k: rows[k] for k in ('source', 'source_mask', 'inputs', 'targets', 'weights')}

    def loss(self, model, params, batch, rng, train):
        hidden, table = model.apply(
            {'params': params},
            batch['source'],
            batch['source_mask'],
            batch['inputs'],
            train=train,
            project=False,
            rngs={'dropout': rng},
        )
        return token_loss(self, hidden, table, batch, train)

    def summarize(self, sums):
        return token_metrics(sums)

    def flops_per_token(self, params):
        """Per target token (source as long as the target): 6 * matmul params, plus attention
        as 12 * layers * seq_len * d_model for each of encoder self-, decoder self- and
        cross-attention (research.flops). Position tables and an untied source table are lookups."""
        return flops.train_flops_per_token(self.model_config(paths.vocab_size(params)), self.config.data.seq_len)
