"""Masked language modelling (BERT pretraining) on packed word windows.

Models: 'bert' (post-LN BERT layout, learned positions) or 'encoder' (pre-LN, rotary).
Masking: research/data/mlm.py (15% of words, 80/10/10). Metrics are over the selected
positions: MLM loss, perplexity and accuracy. An MLM checkpoint initialises a classifier
through `init_from` (the 'encoder' subtree is shared).
"""

import jax
import jax.numpy as jnp
import optax

from research import flops
from research.data.lm import LMData
from research.data.mlm import MLMData
from research.models.encoder import Encoder, MaskedLM
from research.tasks import lm
from research.text import vocab as vocab_lib

HEADLINE = 'val/perplexity'
BASELINE = 'val/unigram_perplexity'  # not computed for MLM; kept for the trainer's summary
load_vocab = lm.load_vocab
summarize = lm.summarize


def build_model(config, vocab_size: int) -> MaskedLM:
    m = config.model
    modern = m.arch == 'encoder'
    encoder = Encoder(vocab_size, m.num_layers, m.d_model, m.num_heads, m.mlp_dim, m.max_len,
                      type_vocab_size=0 if modern else 2, positions='rotary' if modern else 'learned',
                      pre_norm=modern, layer_norm_epsilon=1e-6 if modern else 1e-12,
                      dropout=m.dropout, remat=m.remat, dtype=jnp.dtype(m.dtype),
                      param_dtype=jnp.dtype(m.param_dtype), name='encoder')
    return MaskedLM(encoder)


def make_data(config, vocab, rows, eval_rows, data_state=None) -> MLMData:
    return MLMData(LMData(config, vocab, rows, eval_rows, data_state), len(vocab), vocab_lib.MASK_ID,
                   len(vocab_lib.SPECIALS), config.data.mask_rate, config.data.whole_word, config.seed)


def baselines(config, data) -> dict:
    return {}


def loss(model, params, batch, rng, train: bool):
    """Cross-entropy summed over the masked positions (weights), float32."""
    tokens = batch['inputs']
    logits = model.apply({'params': params}, tokens, batch['targets'] != vocab_lib.PAD_ID,
                         train=train, rngs={'dropout': rng})
    w = batch['weights']
    loss_sum = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets']) * w)
    correct = jnp.sum((jnp.argmax(logits, -1) == batch['targets']) * w)
    return loss_sum, dict(loss=loss_sum, correct=correct, weight=jnp.sum(w))


def dummy_inputs(config):
    shape = (1, config.data.seq_len)
    return jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)


def flops_per_token(params, config) -> float:
    """6 * matmul params (the tied output projection counts once) + 12 * L * T * D."""
    tables = ('pos_embedding', 'type_embedding')
    n = sum(x.size for k, v in params['encoder'].items() if k not in tables for x in jax.tree.leaves(v))
    n += sum(x.size for x in jax.tree.leaves(params['mlm']))
    return flops.transformer_train_flops_per_token(n, config.model, config.data.seq_len)


def write_outputs(config, params, vocab, workdir, rng, eval_sums):
    """Nothing beyond the metrics and the loss curve."""
