"""LM pipeline: bad documents, packing, deterministic resumable iteration, host rows, lm1b."""

import collections
import itertools

import numpy as np
import pytest
import tensorflow_datasets as tfds

from research import tasks
from research.config import load_config
from research.data import lm, sources
from research.data.batching import padded_batches
from research.text.vocab import EOS_ID, PAD_ID, Vocab
from research.text.words import WordTokenizer
from research.tools.build_vocab import count_tokens


def test_bad_documents_are_counted_not_fatal():
    vocab = Vocab.build(collections.Counter('the cat sat on a mat'.split()))
    raw = [b'', b'  \n\t ', b'the cat \xff\xfe sat', b'the mat ' * 50_000, b'on a mat']
    stats = collections.Counter()
    docs = list(lm.encode_documents(raw, WordTokenizer(), vocab, seq_len=16, stats=stats))
    assert stats['docs'] == 5 and stats['empty'] == 2 and stats['non_utf8'] == 1 and stats['long'] == 1
    assert len(docs) == 3 and all(d[-1] == EOS_ID for d in docs)
    windows = np.stack(list(lm.pack(docs, 16, keep_remainder=True)))
    stream = list(itertools.chain(*docs))
    targets = windows[:, 1:][windows[:, 1:] != PAD_ID]
    np.testing.assert_array_equal(targets, stream[1:])  # every token is a target exactly once


def test_train_iterator_resumes_at_the_next_batch_and_splits_rows():
    def windows(epoch):
        rng = np.random.default_rng(epoch)
        return iter(rng.integers(1, 99, (7 * 8 + 3, 9)).astype(np.int32))

    full = lm.TrainIterator(windows, 8, slice(0, 8))
    seen = [next(full) for _ in range(10)]  # crosses into epoch 1 (7 batches per epoch)
    assert full.state == {'epoch': 1, 'batch': 3}
    resumed = lm.TrainIterator(windows, 8, slice(0, 8), state={'epoch': 1, 'batch': 1})
    np.testing.assert_array_equal(next(resumed)['inputs'], seen[8]['inputs'])
    hosts = [lm.TrainIterator(windows, 8, slice(i * 4, i * 4 + 4)) for i in range(2)]
    parts = [next(h)['inputs'] for h in hosts]
    np.testing.assert_array_equal(np.concatenate(parts), seen[0]['inputs'])


@pytest.fixture
def lm1b(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        counts = count_tokens(sources.iter_texts('lm1b', 'train', None), WordTokenizer())
        vocab_path = str(tmp_path / 'vocab.txt')
        Vocab.build(counts, max_size=500).save(vocab_path)
        config = load_config('experiments/lm1b.py:runlocal', [f'data.vocab_path={vocab_path}'])
        yield config, Vocab.load(vocab_path)


def test_lm1b_pipeline_with_mock_data(lm1b):
    config, vocab = lm1b
    config.batch_size, config.data.max_eval_sequences = 2, 0
    task = tasks.get(config)
    train = task.train_data(vocab, slice(0, 2), None)
    a = [next(train)['inputs'] for _ in range(3)]
    again = task.train_data(vocab, slice(0, 2), None)
    for x, y in zip(a, (next(again)['inputs'] for _ in range(3))):
        np.testing.assert_array_equal(x, y)  # same seed, same stream
    assert a[0].shape == (2, config.data.seq_len)
    arrays, stats = task.eval_arrays(vocab, config.data.eval_split)
    size = config.eval_batch_size
    batches = [task.eval_batch(vocab, rows) for rows in padded_batches(arrays, size, slice(0, size))]
    assert all(b['inputs'].shape == (size, config.data.seq_len) for b in batches)
    total = sum(b['weights'].sum() for b in batches)
    assert total == stats['tokens'] - 1  # every eval token but the first is scored
