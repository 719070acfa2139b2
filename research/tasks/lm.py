"""Causal language modelling: next-word prediction with a GPT-style decoder.

A task module provides: HEADLINE/BASELINE metric names, `load_vocab(config)`,
`build_model(config, vocab_size, decode)`, `make_data(...)`, `baselines(config, data)`,
`loss(model, params, batch, rng, train) -> (loss_sum, sums)` where `sums` holds
per-batch sums including 'weight', `summarize(sums, prefix)` -> named metrics,
`dummy_inputs`, `flops_per_token` and `write_outputs` (end-of-run artifacts).
"""

import math
import os

import jax
import jax.numpy as jnp
import optax
from jax.experimental import multihost_utils

from research import flops, sampling
from research.data.lm import LMData
from research.models.decoder import Decoder
from research.text import vocab as vocab_lib
from research.text.words import WordTokenizer


HEADLINE = 'val/perplexity'  # the metric the run summary and plot follow
BASELINE = 'val/unigram_perplexity'


def load_vocab(config):
    return vocab_lib.Vocab.load(config.data.vocab_path)


def baselines(config, data) -> dict:
    """Unigram perplexity on the eval split (fitted on one train epoch), when enabled."""
    return {BASELINE: data.unigram_perplexity()} if config.data.unigram_baseline else {}


def build_model(config, vocab_size: int, decode: bool = False) -> Decoder:
    m = config.model
    return Decoder(
        vocab_size=vocab_size, num_layers=m.num_layers, d_model=m.d_model,
        num_heads=m.num_heads, mlp_dim=m.mlp_dim, max_len=m.max_len, positions=m.positions,
        tie_embeddings=m.tie_embeddings, dropout=m.dropout, dtype=jnp.dtype(m.dtype),
        param_dtype=jnp.dtype(m.param_dtype), remat=m.remat, decode=decode)


def make_data(config, vocab, rows, eval_rows, data_state=None) -> LMData:
    return LMData(config, vocab, rows, eval_rows, data_state)


def loss(model, params, batch, rng, train: bool):
    """Summed weighted cross-entropy (float32) and the sums metrics are made of."""
    logits = model.apply({'params': params}, batch['inputs'], train=train, rngs={'dropout': rng})
    w = batch['weights']
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])
    loss_sum = jnp.sum(xent * w)
    correct = jnp.sum((jnp.argmax(logits, -1) == batch['targets']) * w)
    return loss_sum, dict(loss=loss_sum, correct=correct, weight=jnp.sum(w))


def summarize(sums: dict, prefix: str) -> dict:
    """Sums (host floats) -> mean loss, perplexity, next-word accuracy."""
    weight = float(sums['weight'])
    if weight == 0:
        return {f'{prefix}/{k}': math.nan for k in ('loss', 'perplexity', 'accuracy')}
    mean = float(sums['loss']) / weight
    return {f'{prefix}/loss': mean, f'{prefix}/perplexity': math.exp(min(mean, 700.0)),
            f'{prefix}/accuracy': float(sums['correct']) / weight}


def dummy_inputs(config):
    """Model inputs of the right shape for init / eval_shape (a tuple of positional args)."""
    return (jnp.zeros((1, config.data.seq_len), jnp.int32),)


def flops_per_token(params, config) -> float:
    """Training FLOPs per token: 6 * matmul params + 12 * layers * seq_len * d_model.

    Matmul params exclude the learned position table and, when the output projection is
    untied, the input embedding (a lookup, not a matmul); a tied table counts once.
    """
    sizes = {'/'.join(str(getattr(k, 'key', k)) for k in path): x.size
             for path, x in jax.tree_util.tree_leaves_with_path(params)}
    n = sum(sizes.values()) - sizes.get('pos_embedding', 0)
    if not config.model.tie_embeddings:
        n -= sizes['embed/embedding']
    return flops.transformer_train_flops_per_token(n, config.model, config.data.seq_len)


def encode_prompt(text: str, tokenizer, vocab) -> list:
    """A prompt as the model saw documents: after an <eos> separator."""
    return [vocab_lib.EOS_ID] + vocab.encode(tokenizer.tokenize(text))


def write_outputs(config, params, vocab, workdir: str, rng, eval_sums):
    """End of run: samples.txt with continuations of config.sample.prompts (if any)."""
    if not config.sample.prompts:
        return
    path = os.path.join(workdir, 'samples.txt')
    tokenizer = WordTokenizer(config.data.lowercase, config.data.normalize_numbers)
    s = config.sample
    prompts = [encode_prompt(p, tokenizer, vocab) for p in s.prompts]
    if jax.process_count() > 1:  # decode on each host from a full local copy
        params = multihost_utils.process_allgather(params, tiled=True)
    outs = sampling.generate(build_model(config, len(vocab), decode=True), params, prompts,
                             s.max_new_tokens, rng, s.temperature, s.top_k, eos_id=vocab_lib.EOS_ID)
    if jax.process_index() == 0:
        with open(path, 'w') as f:
            for prompt, out in zip(s.prompts, outs):
                f.write(f'{prompt} ⟶ {tokenizer.detokenize(vocab.decode(out))}\n\n')
