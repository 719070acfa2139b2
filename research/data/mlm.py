"""Masked-LM corruption (BERT): select ~15% of words, replace their pieces 80/10/10.

Selection is by whole word: `word_ids` gives, for every position, the index of the word
its piece came from (-1 for special tokens and padding, which are never selected), and a
word is selected with probability `rate`, all of its pieces together. Each selected piece
is then replaced by [MASK] (80%), a random token (10%) or kept (10%); the loss is on the
selected pieces only. Runs on host numpy with a seeded Generator, so a resumed run
re-creates the same masks.
"""

import numpy as np

EVAL_STREAM = 2 ** 31 - 1  # seed component that sets evaluation masks apart from epochs


def mask_batch(ids: np.ndarray, word_ids: np.ndarray, rng: np.random.Generator, *, mask_id: int,
               vocab_size: int, num_special: int, rate: float = 0.15, whole_word: bool = True):
    """ids, word_ids [B, T] -> dict(inputs, targets, weights) [B, T].

    Random replacements are drawn from ids >= num_special (never a special token). With
    whole_word=False every piece is selected on its own.
    """
    ids, word_ids = np.asarray(ids), np.asarray(word_ids)
    maskable = word_ids >= 0
    if whole_word:
        n_words = int(word_ids.max(initial=-1)) + 1
        chosen = rng.random((ids.shape[0], max(n_words, 1))) < rate
        selected = maskable & np.take_along_axis(chosen, np.maximum(word_ids, 0), axis=1)
    else:
        selected = maskable & (rng.random(ids.shape) < rate)
    action = rng.random(ids.shape)
    random_ids = rng.integers(num_special, vocab_size, ids.shape)
    inputs = np.where(selected & (action < 0.8), mask_id, ids)
    inputs = np.where(selected & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return dict(inputs=inputs.astype(np.int32), targets=ids.astype(np.int32),
                weights=selected.astype(np.float32))


class MLMData:
    """MLM batches over the LM pipeline's packed word windows (word vocab: a token is a word).

    Each window's last seq_len tokens (windows overlap by one, so these are disjoint) are
    corrupted with a Generator seeded by (seed, epoch, batch, global row) in training and
    by (seed, window index) in evaluation: masks depend neither on the host split nor on
    the batch size, and a resumed run re-creates them.
    """

    def __init__(self, lm_data, vocab_size: int, mask_id: int, num_special: int, rate: float,
                 whole_word: bool, seed: int):
        self.lm, self.seed = lm_data, seed
        self.mask_args = dict(mask_id=mask_id, vocab_size=vocab_size, num_special=num_special,
                              rate=rate, whole_word=whole_word)
        self.train_stats, self.eval_stats = lm_data.train_stats, lm_data.eval_stats
        self.train = self._train()

    def _corrupt(self, tokens, row_seeds) -> dict:
        word_ids = np.where(tokens != 0, np.arange(tokens.shape[1])[None, :], -1)  # 0 = <pad>
        rows = [mask_batch(tokens[i:i + 1], word_ids[i:i + 1], np.random.default_rng(s), **self.mask_args)
                for i, s in enumerate(row_seeds)]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def _train(self):
        data = self

        class MaskedTrainIterator:
            """The LM train iterator's batches, corrupted; `state` is the LM iterator's."""
            state = property(lambda _: data.lm.train.state)

            def __iter__(self):
                return self

            def __next__(self):
                it, rows = data.lm.train, data.lm.train_rows
                epoch, index = it.state['epoch'], it.state['batch']
                tokens = next(it)['targets']
                seeds = [(data.seed, epoch, index, r) for r in range(rows.start, rows.start + len(tokens))]
                return data._corrupt(tokens, seeds)

        return MaskedTrainIterator()

    def eval_batches(self):
        n = self.lm.config.eval_batch_size
        rows = self.lm.eval_rows
        for start, batch in zip(range(0, 1 << 62, n), self.lm.eval_batches()):
            tokens = batch['targets']
            yield self._corrupt(tokens, [(self.seed, EVAL_STREAM, start + rows.start + i) for i in range(len(tokens))])
