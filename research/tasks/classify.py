"""Text classification: one label per text; accuracy, macro-F1 and a confusion matrix.

Models: 'bag' (bag of embeddings, the floor of every table) and 'bert' (the BERT-layout
encoder + a pooled linear head; `init_from='hf:DIR'` loads e.g. MiniLM into it, the head
starts fresh). Class weighting lives in the
training batches' `weights` (see research/data/classify.py), so the loss is the plain
weighted mean and the trainer stays task-agnostic.
"""

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research import flops, plots
from research.data import sources
from research.data.classify import ClassifyData, encode_split
from research.convert.hf_bert import load_hf_bert
from research.models.bag import BagOfEmbeddings
from research.models.encoder import Encoder, SequenceClassifier
from research.text import vocab as vocab_lib
from research.text.wordpiece import WordPiece
from research.text.words import WordTokenizer

HEADLINE = 'val/accuracy'
BASELINE = 'val/majority_accuracy'


def class_names(config) -> list:
    d = config.data
    features = sources.get_builder(d.name, d.data_dir or None).info.features
    feature = features[d.label_key] if d.label_key in features else None
    feature = getattr(feature, 'feature', feature)  # a Sequence of per-word labels
    if not hasattr(feature, 'names'):
        raise ValueError(f'config.data.label_key={d.label_key!r} is not a class-label feature of '
                         f'{d.name!r}; features: {sorted(features)}')
    return list(feature.names)


def load_vocab(config):
    """Our word vocabulary, or a BERT WordPiece vocab.txt (config.data.tokenizer)."""
    if config.data.tokenizer == 'wordpiece':
        return WordPiece.load(config.data.vocab_path, lowercase=config.data.lowercase)
    return vocab_lib.Vocab.load(config.data.vocab_path)


class TextClassifier(nn.Module):
    """Encoder -> pooled hidden state -> linear head (params: 'encoder', 'head')."""
    encoder: nn.Module
    num_classes: int
    pooling: str
    dropout: float

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        hidden = self.encoder(tokens, mask, train=train)
        return SequenceClassifier(self.num_classes, self.pooling, self.dropout, name='head')(
            hidden, mask, train=train)


def build_encoder(config, vocab_size: int) -> Encoder:
    """The BERT-layout encoder of the 'bert' arch (params 'encoder'; HF checkpoints load into it)."""
    m = config.model
    return Encoder(vocab_size, m.num_layers, m.d_model, m.num_heads, m.mlp_dim, m.max_len,
                   dropout=m.dropout, remat=m.remat, dtype=jnp.dtype(m.dtype),
                   param_dtype=jnp.dtype(m.param_dtype), name='encoder')


def build_model(config, vocab_size: int):
    m, n = config.model, len(class_names(config))
    if m.arch == 'bag':
        return BagOfEmbeddings(vocab_size, m.d_model, n, m.dropout, dtype=jnp.dtype(m.dtype),
                               param_dtype=jnp.dtype(m.param_dtype))
    return TextClassifier(build_encoder(config, vocab_size), n, m.pooling, m.dropout)


def load_hf(config, path: str) -> dict:
    """A Hugging Face BERT checkpoint as a params tree for the 'bert' model."""
    return {'encoder': load_hf_bert(path)[0]}


def make_data(config, vocab, rows, eval_rows, data_state=None) -> ClassifyData:
    if config.data.tokenizer == 'wordpiece':
        encode = functools.partial(encode_split, config, encode=vocab.encode, end_id=vocab.sep_id)
    else:
        tokenizer = WordTokenizer(config.data.lowercase, config.data.normalize_numbers)
        encode = functools.partial(encode_split, config, encode=lambda text: vocab.encode(tokenizer.tokenize(text)))
    return ClassifyData(config, encode, class_names(config), rows, eval_rows, data_state)


def baselines(config, data) -> dict:
    """Accuracy of always predicting the most frequent training class."""
    majority = int(np.argmax(data.train_counts))
    return {BASELINE: float(np.mean(data.eval_labels() == majority))}


def loss(model, params, batch, rng, train: bool):
    """Weighted cross-entropy sum, and sums for accuracy / macro-F1 (confusion counts).

    Logits [..., C] with labels and weights [...]: one label per text, or per token
    (weight 0 where a token has none).
    """
    logits = model.apply({'params': params}, batch['inputs'], batch['mask'], train=train,
                         rngs={'dropout': rng})
    num_classes = logits.shape[-1]
    logits = logits.reshape(-1, num_classes)
    labels, w = jnp.maximum(batch['labels'].reshape(-1), 0), batch['weights'].reshape(-1)
    loss_sum = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * w)
    real = (w > 0).astype(jnp.float32)
    predicted = jax.nn.one_hot(jnp.argmax(logits, -1), num_classes)
    confusion = jnp.einsum('nt,np->tp', jax.nn.one_hot(labels, num_classes) * real[:, None], predicted)
    return loss_sum, dict(loss=loss_sum, weight=jnp.sum(w), examples=jnp.sum(real), confusion=confusion)


def summarize(sums: dict, prefix: str) -> dict:
    """Mean loss, accuracy and macro-F1 (classes absent from both truth and predictions skipped)."""
    cm = np.asarray(sums['confusion'], np.float64)
    n = cm.sum()
    if n == 0:
        return {f'{prefix}/{k}': float('nan') for k in ('loss', 'accuracy', 'macro_f1')}
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return {f'{prefix}/loss': float(sums['loss']) / max(float(sums['weight']), 1e-12),
            f'{prefix}/accuracy': float(tp.sum() / n), f'{prefix}/macro_f1': float(f1.mean())}


def dummy_inputs(config):
    return (jnp.zeros((1, config.data.seq_len), jnp.int32), jnp.ones((1, config.data.seq_len), bool))


def flops_per_token(params, config) -> float:
    """6 * matmul params (+ 12 * L * T * D attention for encoders); lookups are free."""
    if config.model.arch == 'bag':
        return 2.0 * config.model.d_model + 6.0 * params['head']['kernel'].size / config.data.seq_len
    tables = ('embed', 'pos_embedding', 'type_embedding')
    n = sum(x.size for k, v in params['encoder'].items() if k not in tables for x in jax.tree.leaves(v))
    n += sum(x.size for x in jax.tree.leaves(params['head']))
    return flops.transformer_train_flops_per_token(n, config.model, config.data.seq_len)


def write_outputs(config, params, vocab, workdir: str, rng, eval_sums):
    """End of run: confusion_matrix.png of the final evaluation."""
    if jax.process_index() == 0:
        plots.confusion_matrix(np.asarray(eval_sums['confusion']), class_names(config),
                               os.path.join(workdir, 'confusion_matrix.png'),
                               f'{config.data.name} {config.data.eval_split}')
