"""Word-level classification (POS tags, the supersense of a target word in context).

Model: the BERT-layout encoder + a per-token linear head ('head'); `init_from='hf:DIR'`
loads e.g. MiniLM into the encoder. Labels sit on each word's first subword piece
(research/data/tag.py; data.label_pieces='all' trains on every piece, evaluation always
reads first pieces, so it counts words); everything after the model output is the
classification task's.

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

from research.data.tag import encode_word_split
from research.models.encoder import TokenClassifier
from research.schema import ConfigError, need
from research.tasks.classify import Classify, build_encoder
from research.text import align
from research.text import vocab as vocab_lib
from research.text.words import WordTokenizer


class WordTagger(nn.Module):
    """Encoder -> per-token logits [B, T, classes] (params: 'encoder', 'head')."""

    encoder: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, tokens, mask, *, train: bool = False):
        hidden = self.encoder(tokens, mask, train=train)
        return TokenClassifier(self.encoder.config, self.num_classes, name='head')(hidden, train=train)


def word_encoder(config, vocab):
    """(encode_words, cls_id, sep_id) for a WordPiece or a word vocabulary."""
    if config.data.tokenizer == 'wordpiece':
        return vocab.encode_words, vocab.cls_id, vocab.sep_id
    tokenizer = WordTokenizer(config.data.lowercase, config.data.normalize_numbers)
    encode_word = lambda word: vocab.encode(tokenizer.tokenize(word))
    return functools.partial(align.encode_words, encode_word=encode_word), vocab_lib.CLS_ID, vocab_lib.SEP_ID


def most_frequent(groups, labels, queries, fallback: int) -> np.ndarray:
    """Per query group, the most frequent label of that group in (groups, labels), else fallback."""
    by_group = collections.defaultdict(collections.Counter)
    for group, label in zip(groups, labels):
        by_group[group][label] += 1
    return np.array([by_group[q].most_common(1)[0][0] if q in by_group else fallback for q in queries])


class Tag(Classify):
    name = 'tag'
    headline = 'accuracy'
    baseline = 'stored_baseline_accuracy'

    @classmethod
    def check(cls, config):
        super().check(config)
        pieces = config.data.label_pieces
        need(pieces in ('first', 'all'), f"config.data.label_pieces={pieces!r}: use 'first' or 'all'")

    @classmethod
    def offers(cls, arch):
        return super().offers(arch) | {'target_word'}

    def build_model(self, vocab_size: int) -> WordTagger:
        return WordTagger(build_encoder(self.config, vocab_size), len(self.class_names()))

    def encode(self, vocab, split, train):
        """Training labels go on data.label_pieces; evaluation always reads first pieces."""
        mode = self.config.data.label_pieces if train else 'first'

        def make():
            stats = collections.Counter()
            encode_words, cls_id, sep_id = word_encoder(self.config, vocab)
            return encode_word_split(
                self.config, split, stats, encode_words=encode_words, cls_id=cls_id, sep_id=sep_id, mode=mode
            ), stats

        return self.cached(('encode', split, mode), make)

    def example_labels(self, arrays):
        if 'example_labels' not in arrays:
            raise ConfigError(
                f'{self.config.data.name!r} labels every word, not one target word per '
                f'example: k-shot subsets, probes and zero-shot similarity need one label per example'
            )
        return arrays['example_labels']

    def examples(self, vocab, split):
        arrays = self.example_arrays(vocab, split)  # the first labelled piece is the target in either mode
        return {
            'inputs': arrays['ids'],
            'mask': arrays['mask'],
            'labels': self.example_labels(arrays),
            'position': np.argmax(arrays['labels'] >= 0, axis=1).astype(np.int32),
        }

    def baselines(self, vocab, split):
        """Majority, group most-frequent-label and stored-prediction accuracies (see module doc).

        `group_mfs` learns each group's label from the training split; `eval_group_mfs` counts it
        on the evaluated examples themselves -- an oracle: the best any context-free guess per
        group can do on them.
        """
        train, ev = self.train_arrays(vocab), self.encode(vocab, split, train=False)[0]
        labels = ev['labels']
        train_labels = train['labels']
        majority = int(np.argmax(np.bincount(train_labels[train_labels >= 0])))
        out = {'majority_accuracy': float(np.mean(labels[labels >= 0] == majority))}
        if 'groups' in ev:
            y = ev['example_labels']
            guess = most_frequent(train['groups'], train['example_labels'], ev['groups'], majority)
            out['group_mfs_accuracy'] = float(np.mean(guess == y))
            out['eval_group_mfs_accuracy'] = float(np.mean(most_frequent(ev['groups'], y, ev['groups'], majority) == y))
            out['eval_groups_seen_in_train'] = float(np.mean(np.isin(ev['groups'], train['groups'])))
        if 'baseline' in ev:
            out[self.baseline] = float(np.mean(ev['baseline'] == ev['example_labels']))
        return out
