"""Word labels <-> subword pieces."""

import numpy as np
import pytest

from research.text.align import IGNORE, labels_to_pieces, pieces_to_words

# [CLS] un ##believ ##able café ! ! [SEP] [PAD]
WORD_IDS = [-1, 0, 0, 0, 1, 2, 2, -1, -1]


def test_first_and_all():
    labels = [7, 3, 5]
    np.testing.assert_array_equal(
        labels_to_pieces(labels, WORD_IDS, 'first'), [IGNORE, 7, IGNORE, IGNORE, 3, 5, IGNORE, IGNORE, IGNORE]
    )
    np.testing.assert_array_equal(labels_to_pieces(labels, WORD_IDS, 'all'), [IGNORE, 7, 7, 7, 3, 5, 5, IGNORE, IGNORE])
    with pytest.raises(ValueError, match='mode'):
        labels_to_pieces(labels, WORD_IDS, 'last')


def test_round_trip_to_words():
    labels = np.array([7, 3, 5])
    pieces = labels_to_pieces(labels, WORD_IDS, 'all')
    np.testing.assert_array_equal(pieces_to_words(pieces, WORD_IDS, 3), labels)
    # predictions disagreeing inside a word: the first piece decides; a missing word is IGNORE
    preds = np.array([0, 1, 2, 2, 4, 9, 8, 0, 0])
    np.testing.assert_array_equal(pieces_to_words(preds, WORD_IDS, 4), [1, 4, 9, IGNORE])
