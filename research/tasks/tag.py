"""Word-level classification (POS tags, the supersense of a target word in context).

Model: the BERT-layout encoder + a per-token linear head ('head'); `init_from='hf:DIR'`
loads e.g. MiniLM into the encoder. Labels sit on each word's first subword piece
(research/data/tag.py), so loss, accuracy, macro-F1 and the confusion matrix are counted
over labelled words; everything after the model output is the classification task's.

Baselines, on the evaluated examples: the majority training label; for target-word data,
the most frequent label of the example's group (config.data.group_key, e.g. the lemma) in
the training split (unseen groups get the majority label) and, as an oracle, in the
evaluated examples themselves; and the accuracy of a prediction the dataset stores
(config.data.baseline_key, e.g. WordNet's most-frequent-sense supersense).
"""

import collections
import functools

import flax.linen as nn
import numpy as np

from research.data.classify import ClassifyData
from research.data.tag import encode_word_split
from research.models.encoder import TokenClassifier
from research.tasks.classify import (build_encoder, class_names, dummy_inputs, flops_per_token, load_hf,
                                     load_vocab, loss, summarize, write_outputs)
from research.text import align, vocab as vocab_lib
from research.text.words import WordTokenizer

__all__ = ['HEADLINE', 'BASELINE', 'load_vocab', 'build_model', 'load_hf', 'make_data', 'baselines',
           'loss', 'summarize', 'dummy_inputs', 'flops_per_token', 'write_outputs']
HEADLINE = 'val/accuracy'
BASELINE = 'val/stored_baseline_accuracy'


class WordTagger(nn.Module):
    """Encoder -> per-token logits [B, T, classes] (params: 'encoder', 'head')."""
    encoder: nn.Module
    num_classes: int
    dropout: float

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        hidden = self.encoder(tokens, mask, train=train)
        return TokenClassifier(self.num_classes, self.dropout, name='head')(hidden, train=train)


def build_model(config, vocab_size: int) -> WordTagger:
    return WordTagger(build_encoder(config, vocab_size), len(class_names(config)), config.model.dropout)


def word_encoder(config, vocab):
    """(encode_words, cls_id, sep_id) for a WordPiece or a word vocabulary."""
    if config.data.tokenizer == 'wordpiece':
        return vocab.encode_words, vocab.cls_id, vocab.sep_id
    tokenizer = WordTokenizer(config.data.lowercase, config.data.normalize_numbers)
    encode_word = lambda word: vocab.encode(tokenizer.tokenize(word))
    return functools.partial(align.encode_words, encode_word=encode_word), vocab_lib.CLS_ID, vocab_lib.SEP_ID


def make_data(config, vocab, rows, eval_rows, data_state=None) -> ClassifyData:
    encode_words, cls_id, sep_id = word_encoder(config, vocab)
    encode = functools.partial(encode_word_split, config, encode_words=encode_words, cls_id=cls_id,
                               sep_id=sep_id)
    return ClassifyData(config, encode, class_names(config), rows, eval_rows, data_state)


def most_frequent(groups, labels, queries, fallback: int) -> np.ndarray:
    """Per query group, the most frequent label of that group in (groups, labels), else fallback."""
    by_group = collections.defaultdict(collections.Counter)
    for group, label in zip(groups, labels):
        by_group[group][label] += 1
    return np.array([by_group[q].most_common(1)[0][0] if q in by_group else fallback for q in queries])


def baselines(config, data) -> dict:
    """Majority, group most-frequent-label and stored-prediction accuracies (see module doc).

    `group_mfs` learns each group's label from the training split; `eval_group_mfs` counts it
    on the evaluated examples themselves -- an oracle: the best any context-free guess per
    group can do on them.
    """
    majority = int(np.argmax(data.train_counts))
    out = {'val/majority_accuracy': float(np.mean(data.eval_labels() == majority))}
    train, ev = data.train_arrays, data.eval_arrays
    if 'groups' in ev:
        y = ev['example_labels']
        guess = most_frequent(train['groups'], train['example_labels'], ev['groups'], majority)
        out['val/group_mfs_accuracy'] = float(np.mean(guess == y))
        out['val/eval_group_mfs_accuracy'] = float(np.mean(most_frequent(ev['groups'], y, ev['groups'], majority) == y))
        out['val/eval_groups_seen_in_train'] = float(np.mean(np.isin(ev['groups'], train['groups'])))
    if 'baseline' in ev:
        out[BASELINE] = float(np.mean(ev['baseline'] == ev['example_labels']))
    return out
