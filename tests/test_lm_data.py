"""LM pipeline: bad documents, packing, deterministic resumable iteration, host rows, lm1b."""

import collections
import itertools

import grain
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


def make_streams(docs, batch_size=4, seq_len=8, cursors=None):
    """RowStreams over in-memory documents of integer tokens (b'' = an empty document)."""

    def encode(raw, stats):
        stats['docs'] += 1
        return [int(t) for t in raw.split()] + [EOS_ID] if raw else None

    texts = grain.MapDataset.source(docs).shuffle(seed=3)
    return lm.RowStreams(texts, len(docs), encode, batch_size, seq_len, cursors or {r: (0, 0, 0) for r in range(4)})


def iterator(docs, rows=slice(0, 4), state=None, workers=0):
    state = state or {}
    cursors = {r: tuple(c) for r, c in enumerate(state['rows'])} if state else None
    streams = make_streams(docs, cursors=cursors)
    return lm.TrainIterator(streams, rows, workers, state.get('step', 0), state.get('counts'))


@pytest.fixture(scope='module')
def corpus():
    """30 documents whose tokens name them (document i: 100 i + 10 + k), some empty, one long."""
    lengths = np.random.default_rng(0).integers(0, 12, 30)
    lengths[7] = 60
    return [' '.join(str(100 * i + 10 + k) for k in range(n)).encode() for i, n in enumerate(lengths)]


def test_each_row_packs_its_own_documents_epoch_after_epoch(corpus):
    it = iterator(corpus)
    batches = [next(it) for _ in range(30)]  # several epochs
    order = grain.MapDataset.range(30).shuffle(seed=3)  # the documents' order, epoch e at [30 e, 30 e + 30)
    for row in range(4):
        expected = [EOS_ID]
        for epoch in range(8):
            for position in range(row, 30, 4):  # row r reads positions r, r + 4, ...
                doc = corpus[order[30 * epoch + position]]
                expected += [int(t) for t in doc.split()] + [EOS_ID] if doc else []
        inputs = np.concatenate([b['inputs'][row] for b in batches])
        targets = np.concatenate([b['targets'][row] for b in batches])
        np.testing.assert_array_equal(targets, expected[1 : len(targets) + 1])
        np.testing.assert_array_equal(inputs, expected[: len(inputs)])
        assert all(b['weights'][row].all() for b in batches)
    assert it.state['step'] == 30 and min(cursor[0] for cursor in it.state['rows']) >= 2  # epochs done


def test_resume_anywhere_host_split_and_workers_give_the_same_batches(corpus):
    full = iterator(corpus)
    states, batches = [], []
    for _ in range(24):
        states.append(full.state)
        batches.append(next(full))
    for t in (1, 6, 17):  # a fresh iterator at a checkpointed position goes on identically
        resumed = iterator(corpus, state=states[t])
        for u in range(t, t + 5):
            np.testing.assert_array_equal(next(resumed)['inputs'], batches[u]['inputs'])
        assert resumed.state == states[t + 5]  # position and data counts, exactly
    hosts = [iterator(corpus, rows=slice(0, 2)), iterator(corpus, rows=slice(2, 4))]
    workers = iterator(corpus, workers=2)
    for t in range(12):
        np.testing.assert_array_equal(np.concatenate([next(h)['inputs'] for h in hosts]), batches[t]['inputs'])
        np.testing.assert_array_equal(next(workers)['inputs'], batches[t]['inputs'])
    assert workers.state == states[12]


def test_too_few_documents_or_no_tokens_is_a_clear_error():
    with pytest.raises(ValueError, match='3 documents, fewer than the global batch'):
        make_streams([b'1 2', b'3', b'4'])
    with pytest.raises(ValueError, match='no tokens'):
        next(iterator([b''] * 8))


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


def test_worker_processes_read_a_prepared_dataset_like_the_trainer(bbc):
    """The whole pipeline (TFDS source, tokenizer, vocab) goes to grain's worker processes."""
    from conftest import tiny_lm_config

    batches = {}
    for workers in (0, 2):
        task = tasks.get(tiny_lm_config(bbc, data__workers=workers))
        data = task.train_data(task.load_vocab(), slice(0, 16), None)
        batches[workers] = [next(data)['inputs'] for _ in range(3)]
        assert data.state['counts']['docs'] >= 16
    np.testing.assert_array_equal(batches[0], batches[2])
