"""Text classification: one label per text; accuracy, macro-F1 and a confusion matrix.

Models: 'bag' (bag of embeddings, the floor of every table) and 'bert' (the BERT-layout
encoder + a pooled linear head; `init_from='hf:DIR'` loads e.g. MiniLM into it, the head
starts fresh). Class weighting lives in the training batches' `weights` (see
research/data/classify.py), so the loss is the plain weighted mean and the trainer stays
task-agnostic. `data.train_examples_per_class = k` trains on a balanced k-shot subset drawn
with `data.subset_seed` (research/data/subset.py; the same draw as a k-shot probe's).
"""

import collections

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research import flops, metrics
from research.convert.hf_bert import load_hf_bert
from research.data import subset
from research.data.classify import ExampleIterator, class_weights, cut, downsample, encode_split
from research.models import paths
from research.models.bag import BagOfEmbeddings
from research.models.config import TransformerConfig
from research.models.encoder import Encoder, SequenceClassifier, pool
from research.schema import need
from research.tasks.base import Task
from research.text import vocab as vocab_lib
from research.text.wordpiece import WordPiece
from research.text.words import WordTokenizer


class TextClassifier(nn.Module):
    """Encoder -> pooled hidden state -> linear head (params: 'encoder', 'head')."""

    encoder: nn.Module
    num_classes: int
    pooling: str

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        hidden = self.encoder(tokens, mask, train=train)
        head = SequenceClassifier(self.encoder.config, self.num_classes, self.pooling, name='head')
        return head(hidden, mask, train=train)


def encoder_config(config, vocab_size: int, **overrides) -> TransformerConfig:
    """An encoder task's TransformerConfig, its preset in research/models/config.py: 'encoder'
    (pre-LN, rotary) for model.arch 'encoder', else 'bert', the BERT layout (post-LN, learned
    positions, token types; HF checkpoints load into it)."""
    arch = 'encoder' if config.model.arch == 'encoder' else 'bert'
    return TransformerConfig.from_config(config.model, vocab_size, arch=arch, **overrides)


def build_encoder(config, vocab_size: int) -> Encoder:
    """The encoder of an encoder task (params 'encoder'; see encoder_config)."""
    return Encoder(encoder_config(config, vocab_size), name='encoder')


class Classify(Task):
    name = 'classify'
    headline = 'accuracy'
    baseline = 'majority_accuracy'

    def load_vocab(self):
        """Our word vocabulary, or a BERT WordPiece vocab.txt (config.data.tokenizer)."""
        d = self.config.data
        if d.tokenizer == 'wordpiece':
            return WordPiece.load(d.vocab_path, lowercase=d.lowercase)
        return vocab_lib.Vocab.load(d.vocab_path)

    def model_config(self, vocab_size, **overrides):
        if self.config.model.arch == 'bag':
            return super().model_config(vocab_size, **overrides)
        return encoder_config(self.config, vocab_size, **overrides)

    def build_model(self, vocab_size: int):
        n = len(self.class_names())
        if self.config.model.arch == 'bag':
            return BagOfEmbeddings(self.model_config(vocab_size), n)
        return TextClassifier(build_encoder(self.config, vocab_size), n, self.config.model.pooling)

    def encoder(self, vocab_size: int):
        return build_encoder(self.config, vocab_size) if self.config.model.arch == 'bert' else None

    @classmethod
    def check(cls, config):
        pooling = config.model.pooling
        need(pooling in ('mean', 'cls'), f"config.model.pooling={pooling!r}: use 'mean' or 'cls'")
        need(
            not (config.loss.class_weights and config.loss.balanced),
            'set either config.loss.class_weights or config.loss.balanced, not both',
        )

    @classmethod
    def offers(cls, arch):
        encoder = {'pooled', 'load_hf'} if arch == 'bert' else set()
        return frozenset({'examples', 'encode_text'} | encoder)

    def load_hf(self, path: str) -> dict:
        return {'encoder': load_hf_bert(path)[0]}

    def pooled(self, vocab, pooling: str):
        """fn(params, batch) -> encoder features [B, D] float32 of batch 'inputs'/'mask', pooled by
        `pooling` ('mean', 'cls', or 'target': the hidden state at batch 'position')."""
        encoder = self.encoder(len(vocab))

        def features(params, batch):
            hidden = encoder.apply({'params': params['encoder']}, batch['inputs'], batch['mask'])
            if pooling == 'target':
                out = jnp.take_along_axis(hidden, batch['position'][:, None, None], axis=1)[:, 0]
            else:
                out = pool(hidden, batch['mask'], pooling)
            return out.astype(jnp.float32)

        return features

    def dummy_inputs(self):
        shape = (1, self.config.data.seq_len)
        return jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)

    # --- data ---------------------------------------------------------------------------
    def text_encoder(self, vocab):
        """(text -> all its ids, the end id a cut text keeps): WordPiece [CLS] … [SEP], or words."""
        d = self.config.data
        if d.tokenizer == 'wordpiece':
            return vocab.encode, vocab.sep_id
        tokenizer = WordTokenizer(d.lowercase, d.normalize_numbers)
        return (lambda text: vocab.encode(tokenizer.tokenize(text))), None

    def encode_text(self, vocab, text: str) -> list:
        encode, end = self.text_encoder(vocab)
        return cut(encode(text), self.config.data.seq_len, end)

    def encode(self, vocab, split: str, train: bool) -> tuple[dict, collections.Counter]:
        """The split as arrays {'ids', 'mask', 'labels', …} in stored order, and its counts."""

        def make():
            stats = collections.Counter()
            encode, end = self.text_encoder(vocab)
            return encode_split(self.config, split, stats, encode=encode, end_id=end), stats

        return self.cached(('encode', split), make)

    def example_labels(self, arrays: dict) -> np.ndarray:
        """One label per example [N] (for k-shot subsets and baselines)."""
        return arrays['labels']

    def train_arrays(self, vocab) -> dict:
        """The training split after data.train_class_fraction (what baselines learn from)."""
        return self.cached(
            'train_arrays',
            lambda: downsample(
                self.config, self.encode(vocab, self.config.data.train_split, train=True)[0], self.class_names()
            ),
        )

    def train_subset(self, vocab) -> dict:
        """The training arrays, restricted to the k-shot subset when data.train_examples_per_class
        is set (drawn with data.subset_seed)."""
        d, arrays = self.config.data, self.train_arrays(vocab)
        if not d.train_examples_per_class:
            return arrays
        keep = subset.k_per_class(
            self.example_labels(arrays), d.train_examples_per_class, d.subset_seed, self.class_names()
        )
        return {k: v[keep] for k, v in arrays.items()}

    def train_data(self, vocab, rows, state):
        arrays = self.train_subset(vocab)
        labels = arrays['labels']  # class weights count what is trained on (a k-shot subset is balanced)
        counts = np.bincount(labels[labels >= 0], minlength=len(self.class_names()))
        inputs = {'inputs': arrays['ids'], 'mask': arrays['mask'], 'labels': arrays['labels']}
        return self.iterator(inputs, class_weights(self.config, counts), vocab, rows, state)

    def iterator(self, arrays: dict, weights, vocab, rows, state) -> ExampleIterator:
        """Training batches of `arrays` in data.seed order; stats are the train split's."""
        d = self.config.data
        stats = self.encode(vocab, d.train_split, train=True)[1]
        return ExampleIterator(arrays, weights, self.config.batch_size, rows, d.seed, state, stats)

    def eval_arrays(self, vocab, split):
        arrays, stats = self.encode(vocab, split, train=False)
        return {'inputs': arrays['ids'], 'mask': arrays['mask'], 'labels': arrays['labels']}, stats

    def eval_batch(self, vocab, rows):
        labels = rows['labels']
        valid = rows['valid'].reshape((-1,) + (1,) * (labels.ndim - 1))
        return dict(
            inputs=rows['inputs'], mask=rows['mask'], labels=labels, weights=((labels >= 0) & valid).astype(np.float32)
        )

    def example_arrays(self, vocab, split: str) -> dict:
        """A split's encoded arrays; the training split as trained on (after train_class_fraction),
        so a probe draws its k-shot examples from what k-shot fine-tuning draws from."""
        return (
            self.train_arrays(vocab) if split == self.config.data.train_split else self.encode(vocab, split, False)[0]
        )

    def examples(self, vocab, split):
        arrays = self.example_arrays(vocab, split)
        return {'inputs': arrays['ids'], 'mask': arrays['mask'], 'labels': self.example_labels(arrays)}

    def baselines(self, vocab, split):
        """Accuracy of always predicting the most frequent training class."""
        majority = int(np.argmax(np.bincount(self.example_labels(self.train_arrays(vocab)))))
        return {self.baseline: float(np.mean(self.example_labels(self.encode(vocab, split, False)[0]) == majority))}

    # --- model --------------------------------------------------------------------------
    def loss(self, model, params, batch, rng, train):
        """Weighted cross-entropy sum, and sums for accuracy / macro-F1 (confusion counts).

        Logits [..., C] with labels and weights [...]: one label per text, or per token
        (weight 0 where a token has none).
        """
        logits = model.apply({'params': params}, batch['inputs'], batch['mask'], train=train, rngs={'dropout': rng})
        num_classes = logits.shape[-1]
        logits = logits.reshape(-1, num_classes)
        labels, w = jnp.maximum(batch['labels'].reshape(-1), 0), batch['weights'].reshape(-1)
        loss_sum = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * w)
        # Label smoothing (training only): + ε (target logit - mean logit), see research/losses.py.
        target = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
        objective = loss_sum + self.smoothing(train) * jnp.sum((target - jnp.mean(logits, axis=-1)) * w)
        real = (w > 0).astype(jnp.float32)
        predicted = jax.nn.one_hot(jnp.argmax(logits, -1), num_classes)
        confusion = jnp.einsum('nt,np->tp', jax.nn.one_hot(labels, num_classes) * real[:, None], predicted)
        return objective, dict(loss=loss_sum, weight=jnp.sum(w), examples=jnp.sum(real), confusion=confusion)

    def summarize(self, sums):
        """Mean loss, accuracy and macro-F1."""
        loss = float(sums['loss']) / float(sums['weight']) if float(sums['weight']) else float('nan')
        return {'loss': loss, **metrics.accuracy_and_macro_f1(sums['confusion'])}

    def flops_per_token(self, params):
        """research.flops of the model + the head, a dense to the classes (per token for an
        encoder; the bag of embeddings counts its kernel, once per text)."""
        c, n = self.model_config(paths.vocab_size(params)), len(self.class_names())
        head = c.d_model * n if c.arch == 'bag' else c.d_model * n + n
        return flops.train_flops_per_token(c, self.config.data.seq_len, head)
