"""Translation data: the `bible_en_es` builder (verse alignment, book splits) and the joint
SentencePiece tokenizer (build_spm; exact round trip)."""

import collections
import shutil

import numpy as np
import pytest

from research import translate
from research.data import bible_en_es, sources
from research.text import spm
from research.tools import build_spm

needs_sword = pytest.mark.skipif(
    shutil.which('diatheke') is None, reason=f'SWORD not installed: {bible_en_es.INSTALL} (make system-deps)'
)


def test_aligned_pairs_drop_and_count_what_does_not_pair():
    en = {('John', 3, 16): 'For God so loved the world', ('John', 3, 17): '', ('Jude', 1, 1): 'Jude, a servant',
          ('Acts', 8, 37): 'long ' * 81}  # fmt: skip
    es = {('John', 3, 16): 'Porque de tal manera amó Dios al mundo', ('John', 3, 17): 'Porque no envió',
          ('Acts', 8, 37): 'corto', ('Ruth', 1, 1): 'Y aconteció'}  # fmt: skip
    stats = collections.Counter()
    pairs = bible_en_es.aligned_pairs(en, es, stats)
    assert pairs == [(('John', 3, 16), en[('John', 3, 16)], es[('John', 3, 16)])]
    assert stats == dict(en_verses=4, es_verses=4, missing_in_es=1, missing_in_en=1, empty=1, too_long=1, kept=1)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp('bible_en_es'))
    sources.prepare(lambda: bible_en_es.BibleEnEs(data_dir=data_dir))
    return data_dir


@needs_sword
def test_bible_en_es_pairs_verses_and_splits_by_book(prepared, capsys):
    rows = {
        split: [{k: v.decode() for k, v in ex.items()} for ex in sources.load_split('bible_en_es', split, prepared)]
        for split in ('train', 'validation', 'test')
    }
    pairs = {r['id']: r for split in rows.values() for r in split}
    assert 29_000 < len(pairs) < 31_103, len(pairs)  # RV1909 has 31,103 verses; a few do not pair
    john = pairs['John/3/16']
    assert john['en'].startswith('For God so loved the world') and john['es'].startswith('Porque de tal manera')
    books = {split: {r['book'] for r in split_rows} for split, split_rows in rows.items()}
    assert books['validation'] and books['test'] and not books['train'] & (books['validation'] | books['test'])
    assert all(bible_en_es.bible.split_of(b) == split for split, bs in books.items() for b in bs)
    # Every tenth book held out: 90 / 3 / 7% of the pairs (II Samuel, Amos, Philippians / Proverbs, Matthew, I Peter).
    sizes = {split: len(split_rows) for split, split_rows in rows.items()}
    assert 900 < sizes['validation'] < 1000 and 2000 < sizes['test'] < 2150, sizes


@needs_sword
def test_build_spm_round_trips_exactly(prepared, tmp_path, capsys):
    out = str(tmp_path / 'en_es')
    args = ['--dataset', 'bible_en_es', '--keys', 'en,es', '--vocab_size', '500', '--out', out]
    assert build_spm.main(args + ['--data_dir', prepared, '--split', 'validation']) == 0
    assert '500 pieces (unigram)' in capsys.readouterr().out
    tok = spm.SentencePiece(out + '.model')
    assert len(tok) == 500 and (tok.pad_id, tok.eos_id) == (0, 3)
    for text in ('En el principio creó Dios los cielos y la tierra.', '  two  spaces, «guillemets» & 12345 ☃ '):
        ids = tok.encode(text)
        assert tok.decode(ids) == text  # identity normalisation, whitespace kept, bytes for the unseen
        assert tok.decode(ids + [tok.eos_id, 57, 9]) == text  # stops at <eos>


def test_bad_keys_and_missing_model_are_clear_errors(bbc, tmp_path, capsys):
    args = ['--dataset', 'bbc_news', '--data_dir', bbc['data_dir'], '--keys', 'text,en', '--out', str(tmp_path / 'x')]
    assert build_spm.main(args) == 2
    assert "--keys 'en' is not a feature of 'bbc_news'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='build_spm'):
        spm.SentencePiece(str(tmp_path / 'none.model'))


@pytest.mark.slow
@needs_sword
def test_en_es_runlocal_trains_scores_and_translates(prepared, tmp_path, capsys):
    from research.config import load_config
    from research.train import train_and_evaluate

    out = str(tmp_path / 'spm')
    args = ['--dataset', 'bible_en_es', '--keys', 'en,es', '--vocab_size', '500', '--out', out, '--data_dir', prepared]
    assert build_spm.main(args + ['--split', 'validation']) == 0
    overrides = [f'data.data_dir={prepared}', f'data.vocab_path={out}.model', 'progress_bar=False']
    config = load_config('experiments/translation/en_es.py:runlocal', overrides)
    final = train_and_evaluate(config, str(tmp_path / 'run'))
    out = capsys.readouterr().out
    first = [line for line in out.splitlines() if line.startswith('step 0 task')][0]
    assert final['val/loss'] < float(first.split('val/loss ')[1].split(',')[0])  # it learns
    assert 'test/beam/sacrebleu signature: BLEU nrefs:1|case:mixed|eff:no|tok:13a' in out
    # 64 test verses: copying English scores near 0 BLEU, the word dictionary well above it.
    assert final['test/beam/copy_bleu'] < 2 < 5 < final['test/beam/dictionary_bleu']
    assert final['test/beam/dictionary_chrf'] > final['test/beam/copy_chrf'] + 10
    assert {'test/greedy/bleu', 'test/greedy/chrf_low'} <= set(final) and 'test/greedy/copy_bleu' not in final
    with open(tmp_path / 'run' / 'translations' / 'test_beam.tsv') as f:
        rows = [line.rstrip('\n').split('\t') for line in f]
    test_split = sources.load_split('bible_en_es', 'test', prepared)
    test = collections.defaultdict(set)  # a repeated proverb may be translated two ways
    for e in test_split:
        test[' '.join(e['en'].decode().split())].add(' '.join(e['es'].decode().split()))
    assert len(rows) == 65 and all(reference in test[source] for source, reference, _ in rows[1:])  # aligned
    assert translate.main(['--workdir', str(tmp_path / 'run'), '--text', 'Grace to you.']) == 0
    assert 'Grace to you. ⟶ ' in capsys.readouterr().out


def test_length_grouped_batches_cover_the_epoch_cut_only_padding_and_split_over_hosts():
    from research.data.classify import ExampleIterator

    lengths = np.random.default_rng(0).integers(1, 65, 1000)
    tokens = np.array([[i + 1] * n + [0] * (64 - n) for i, n in enumerate(lengths)])
    arrays = dict(tokens=tokens, id=np.arange(1000))
    one = ExampleIterator(arrays, None, 32, slice(0, 32), 0, lengths=lengths)
    batches = [next(one) for _ in range(31)]  # one epoch: 1000 // 32 batches
    ids = np.concatenate([b['id'] for b in batches])
    assert len(set(ids)) == 992 and one.state == {'epoch': 0, 'batch': 31}
    for b in batches:  # cut to the longest row, rounded up to 16: nothing real is lost
        width = b['tokens'].shape[1]
        assert width % 16 == 0 and width - 16 < lengths[b['id']].max() <= width
        assert (b['tokens'] > 0).sum() == lengths[b['id']].sum()
    padded = sum(b['tokens'].size for b in batches)
    assert padded < 0.7 * 992 * 64  # vs the full width (the grouping is what saves it)
    exact = ExampleIterator(arrays, None, 32, slice(0, 32), 0, lengths=lengths, multiple=1)
    hosts = [ExampleIterator(arrays, None, 32, slice(r, r + 16), 0, lengths=lengths, multiple=1) for r in (0, 16)]
    for _ in range(3):  # two hosts: the same global batch, cut to the global batch's width
        b, parts = next(exact), [next(h) for h in hosts]
        assert np.array_equal(np.concatenate([p['id'] for p in parts]), b['id'])
        assert {p['tokens'].shape[1] for p in parts} == {b['tokens'].shape[1]} == {lengths[b['id']].max()}
    resumed = ExampleIterator(arrays, None, 32, slice(0, 32), 0, state={'epoch': 0, 'batch': 5}, lengths=lengths)
    assert np.array_equal(next(resumed)['id'], batches[5]['id'])
