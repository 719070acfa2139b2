"""Masked language modelling (BERT pretraining) on packed word windows.

Models: 'bert' (post-LN BERT layout, learned positions) or 'encoder' (pre-LN, rotary).
Masking: research/data/mlm.py (15% of words, 80/10/10, seeded by data.seed). Metrics are
over the selected positions: MLM loss, perplexity and accuracy. An MLM checkpoint
initialises a classifier through `init_from` (the 'encoder' subtree is shared).
"""

import jax.numpy as jnp

from research import flops
from research.data import lm as lm_data
from research.data import mlm as mlm_data
from research.models import paths
from research.models.encoder import Encoder, MaskedLM
from research.tasks.base import Task
from research.tasks.classify import build_encoder, encoder_config
from research.tasks.lm import LanguageModel, check_words, token_loss
from research.text import vocab as vocab_lib


class MaskedLanguageModel(Task):
    name = 'mlm'
    headline = 'perplexity'
    load_vocab = LanguageModel.load_vocab
    summarize = LanguageModel.summarize

    def encoder(self, vocab_size: int) -> Encoder:
        return build_encoder(self.config, vocab_size)

    def model_config(self, vocab_size, **overrides):
        return encoder_config(self.config, vocab_size, **overrides)

    def build_model(self, vocab_size: int) -> MaskedLM:
        return MaskedLM(self.encoder(vocab_size))

    def dummy_inputs(self):
        shape = (1, self.config.data.seq_len)
        return jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)

    def mask_args(self, vocab) -> dict:
        d = self.config.data
        return dict(
            mask_id=vocab_lib.MASK_ID,
            vocab_size=len(vocab),
            num_special=len(vocab_lib.SPECIALS),
            rate=d.mask_rate,
            whole_word=d.whole_word,
        )

    def train_data(self, vocab, rows, state):
        return mlm_data.MaskedTrainIterator(
            lm_data.train_iterator(self.config, vocab, rows, state), rows, self.config.data.seed, self.mask_args(vocab)
        )

    def eval_arrays(self, vocab, split):
        windows, stats = self.cached(('eval', split), lambda: lm_data.eval_windows(self.config, vocab, split))
        return {'tokens': windows[:, 1:]}, stats  # windows overlap by one: their tails are disjoint

    def eval_batch(self, vocab, rows):
        # Padding rows are all <pad>: nothing is selected, so they weigh 0.
        return mlm_data.eval_masks(rows['tokens'], rows['index'], self.config.data.seed, self.mask_args(vocab))

    def loss(self, model, params, batch, rng, train):
        """Cross-entropy summed over the masked positions (weights), float32."""
        tokens = batch['inputs']
        hidden, table, bias = model.apply(
            {'params': params},
            tokens,
            batch['targets'] != vocab_lib.PAD_ID,
            train=train,
            project=False,
            rngs={'dropout': rng},
        )
        return token_loss(self, hidden, table, batch, train, bias, sparse=True)

    @classmethod
    def check(cls, config):
        check_words(config)

    @classmethod
    def offers(cls, arch):
        return frozenset({'masked_token_logits'})

    def masked_token_logits(self, vocab):
        """fn(params, batch) -> logits [B, T, V] (float32) at every position of batch 'inputs'
        (the [MASK] positions are the predictions), attending where batch 'mask' is True."""
        model = self.build_model(len(vocab))
        return lambda params, batch: model.apply({'params': params}, batch['inputs'], batch['mask'])

    def flops_per_token(self, params):
        """6 * matmul params + 12 * L * T * D, with the output projection (the tied embedding and
        its bias) at the data.mask_rate of positions that are predicted: the loss skips the rest
        (research/losses.py), so counting it everywhere would overstate MFU."""
        c = self.model_config(paths.vocab_size(params))
        output = c.vocab_size * c.d_model + c.vocab_size  # the tied table and its bias
        head = c.d_model * c.d_model + c.d_model + 2 * c.d_model + output  # transform, LayerNorm, output
        full = flops.train_flops_per_token(c, self.config.data.seq_len, head)
        return full - 6.0 * output * (1.0 - self.config.data.mask_rate)
