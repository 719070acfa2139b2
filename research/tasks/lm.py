"""Causal language modelling: next-word prediction with a GPT-style decoder."""

import math
import os

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils

from research import flops, losses, sampling
from research.data import lm as lm_data
from research.models import paths
from research.models.decoder import Decoder
from research.schema import need
from research.tasks.base import Task
from research.text import vocab as vocab_lib
from research.text.words import WordTokenizer


def encode_prompt(text: str, tokenizer, vocab) -> list:
    """A prompt as the model saw documents: after an <eos> separator."""
    return [vocab_lib.EOS_ID] + vocab.encode(tokenizer.tokenize(text))


def token_metrics(sums) -> dict:
    """Sums (host floats) of a next-token loss -> mean loss, perplexity, token accuracy."""
    weight = float(sums['weight'])
    if weight == 0:
        return {k: math.nan for k in ('loss', 'perplexity', 'accuracy')}
    mean = float(sums['loss']) / weight
    return {'loss': mean, 'perplexity': math.exp(min(mean, 700.0)), 'accuracy': float(sums['correct']) / weight}


def token_loss(task, hidden, table, batch, train: bool, bias=None, sparse: bool = False):
    """A task's loss() from hidden states and the output table (research/losses.py): the
    (label-smoothed in training) objective and the sums token_metrics reads."""
    w = batch['weights']
    objective, loss_sum, correct = losses.token_losses(
        hidden,
        table,
        batch['targets'],
        w,
        bias,
        chunk_tokens=task.config.model.logits_chunk,
        sparse=sparse,
        smoothing=task.smoothing(train),
    )
    return objective, dict(loss=loss_sum, correct=correct, weight=jnp.sum(w))


def check_words(config):
    """The LM and MLM tasks read a word vocabulary (research/text/vocab.py)."""
    need(
        config.data.tokenizer == 'words',
        f"config.data.tokenizer={config.data.tokenizer!r}: task {config.task!r} reads a word vocabulary; use 'words'",
    )


class LanguageModel(Task):
    name = 'lm'
    headline = 'perplexity'
    baseline = 'unigram_perplexity'

    def load_vocab(self):
        return vocab_lib.Vocab.load(self.config.data.vocab_path)

    def tokenizer(self) -> WordTokenizer:
        return WordTokenizer(self.config.data.lowercase, self.config.data.normalize_numbers)

    def build_model(self, vocab_size: int, decode: bool = False) -> Decoder:
        return Decoder(self.model_config(vocab_size, decode=decode))

    def dummy_inputs(self):
        return (jnp.zeros((1, self.config.data.seq_len), jnp.int32),)

    def train_data(self, vocab, rows, state):
        return lm_data.train_iterator(self.config, vocab, rows, state)

    def eval_arrays(self, vocab, split):
        windows, stats = self.cached(('eval', split), lambda: lm_data.eval_windows(self.config, vocab, split))
        return {'windows': windows}, stats

    def eval_batch(self, vocab, rows):
        return lm_data.to_batch(rows['windows'])  # padding rows are all <pad>: weight 0

    def baselines(self, vocab, split):
        """Unigram perplexity on the split (fitted on one train epoch), when enabled."""
        if not self.config.data.unigram_baseline:
            return {}
        windows = self.eval_arrays(vocab, split)[0]['windows']
        return {self.baseline: lm_data.unigram_perplexity(self.config, vocab, windows)}

    def loss(self, model, params, batch, rng, train):
        """Summed weighted cross-entropy (float32) and the sums metrics are made of."""
        hidden, table = model.apply(
            {'params': params}, batch['inputs'], train=train, project=False, rngs={'dropout': rng}
        )
        return token_loss(self, hidden, table, batch, train)

    def summarize(self, sums):
        return token_metrics(sums)

    @classmethod
    def check(cls, config):
        check_words(config)

    @classmethod
    def offers(cls, arch):
        return frozenset({'next_token_logits'})

    def next_token_logits(self, vocab):
        """fn(params, batch) -> logits [B, T, V] (float32) of the next token after each of batch
        'inputs' (its 'mask' is not needed: a row's padding comes after every position read)."""
        model = self.build_model(len(vocab))
        return lambda params, batch: model.apply({'params': params}, batch['inputs'])

    def flops_per_token(self, params):
        """6 * matmul params + 12 * layers * seq_len * d_model (research.flops): the position
        table and an untied input embedding are lookups; the output table counts once."""
        return flops.train_flops_per_token(self.model_config(paths.vocab_size(params)), self.config.data.seq_len)

    def write_outputs(self, params, vocab, workdir, rng):
        """samples.txt with continuations of config.sample.prompts (if any)."""
        s = self.config.sample
        if not s.prompts:
            return
        tokenizer = self.tokenizer()
        prompts = [encode_prompt(p, tokenizer, vocab) for p in s.prompts]
        if jax.process_count() > 1:  # decode on each host from a full local copy
            params = multihost_utils.process_allgather(params, tiled=True)
        outs = sampling.generate(
            self.build_model(len(vocab), decode=True),
            params,
            prompts,
            s.max_new_tokens,
            rng,
            s.temperature,
            s.top_k,
            eos_id=vocab_lib.EOS_ID,
        )
        if jax.process_index() == 0:
            with open(os.path.join(workdir, 'samples.txt'), 'w') as f:
                for prompt, out in zip(s.prompts, outs):
                    f.write(f'{prompt} ⟶ {tokenizer.detokenize(vocab.decode(out))}\n\n')
