"""MLM masking: 15% of words, 80/10/10 replacement, whole-word grouping (statistically)."""

import numpy as np
import pytest

from research.data.mlm import mask_batch

MASK, VOCAB, SPECIAL = 4, 1000, 7


def batch(b=256, t=128, seed=0):
    """Rows of [CLS] words… [SEP] pad…; words of 1-4 pieces; word_ids -1 on specials/pad."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((b, t), np.int64)
    word_ids = np.full((b, t), -1)
    for r in range(b):
        pos, word = 1, 0
        ids[r, 0] = 5
        length = rng.integers(t // 2, t - 1)
        while pos < length:
            n = min(rng.integers(1, 5), length - pos)
            ids[r, pos : pos + n] = rng.integers(SPECIAL, VOCAB, n)
            word_ids[r, pos : pos + n] = word
            pos, word = pos + n, word + 1
        ids[r, pos] = 6
    return ids, word_ids


def test_whole_word_selection_and_80_10_10():
    ids, word_ids = batch()
    out = mask_batch(ids, word_ids, np.random.default_rng(1), mask_id=MASK, vocab_size=VOCAB, num_special=SPECIAL)
    sel = out['weights'] > 0
    assert not sel[word_ids < 0].any(), 'specials and padding are never selected'
    # whole words: within each word, all pieces share the selection
    words = {}
    for r, c in zip(*np.nonzero(word_ids >= 0)):
        words.setdefault((r, word_ids[r, c]), set()).add(bool(sel[r, c]))
    assert all(len(v) == 1 for v in words.values())
    frac_words = np.mean([next(iter(v)) for v in words.values()])
    assert frac_words == pytest.approx(0.15, abs=0.01)  # ~17k words: 3 sigma ~ 0.008
    masked = (out['inputs'] == MASK)[sel].mean()
    kept = (out['inputs'] == ids)[sel].mean()  # includes random draws equal to the original
    random = 1 - masked - kept
    n = sel.sum()
    assert masked == pytest.approx(0.8, abs=4 * np.sqrt(0.16 / n))
    assert random == pytest.approx(0.1, abs=4 * np.sqrt(0.09 / n))
    assert kept == pytest.approx(0.1, abs=4 * np.sqrt(0.09 / n) + 1 / VOCAB)
    assert (out['inputs'][~sel] == ids[~sel]).all()
    assert (out['inputs'] >= SPECIAL)[sel & (out['inputs'] != MASK)].all()
    np.testing.assert_array_equal(out['targets'], ids)


def test_piece_level_selection_and_determinism():
    ids, word_ids = batch(seed=2)
    a = mask_batch(
        ids, word_ids, np.random.default_rng(3), mask_id=MASK, vocab_size=VOCAB, num_special=SPECIAL, whole_word=False
    )
    b = mask_batch(
        ids, word_ids, np.random.default_rng(3), mask_id=MASK, vocab_size=VOCAB, num_special=SPECIAL, whole_word=False
    )
    np.testing.assert_array_equal(a['inputs'], b['inputs'])
    assert a['weights'][word_ids >= 0].mean() == pytest.approx(0.15, abs=0.01)
    assert not a['weights'][word_ids < 0].any()
