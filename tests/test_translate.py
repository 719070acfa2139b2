"""Translation scoring and use: sacrebleu BLEU/chrF with bootstrap intervals, the
word-dictionary baseline, the `translate` evaluator (translations/*.tsv), `python -m
research.translate`, and the WMT'14 config's pipeline under tfds.testing.mock_data."""

import collections
import csv

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import tiny_lm_config

from research import translate as translate_cli
from research.config import ConfigError, load_config
from research.data import translate as translate_data
from research.evaluators import check as check_evals
from research.text import bleu
from research.train import train_and_evaluate

REFS = ['el perro come pan .', 'la casa es muy grande .', 'hola a todos .', 'yo tengo un gato negro .']


def test_scores_perfect_and_partial_translations():
    perfect, signature, perfect_samples = bleu.scores(REFS, REFS, bootstrap=200)
    assert perfect['bleu'] == pytest.approx(100) and perfect['chrf'] == pytest.approx(100)
    assert perfect['bleu_low'] == pytest.approx(100) and perfect['length_ratio'] == 1
    assert 'tok:13a' in signature and 'chrF' in signature and 'version:' in signature
    worse = ['el perro come .', 'la casa es grande .', 'hola .', 'yo tengo un gato negro .']
    s, _, samples = bleu.scores(worse, REFS, bootstrap=200)
    assert 20 < s['bleu'] < 90 and s['chrf'] < 100
    assert s['bleu_low'] < s['bleu'] < s['bleu_high'] and s['chrf_low'] < s['chrf_high']
    assert s['length_ratio'] == pytest.approx(sum(len(h.split()) for h in worse) / sum(len(r.split()) for r in REFS))
    with pytest.raises(ValueError, match='3 hypotheses for 4 references'):
        bleu.scores(worse[:3], REFS)
    # Paired bootstrap: both systems on the same resampled sentence sets (the same seed).
    np.testing.assert_array_equal(bleu.scores(worse, REFS, bootstrap=200)[2], samples)
    better = bleu.paired(perfect, perfect_samples, s, samples)
    assert better['bleu'] == pytest.approx(100 - s['bleu']) and better['chrf'] == pytest.approx(100 - s['chrf'])
    assert better['bleu_wins'] == 1.0 and 0 < better['bleu_low'] <= better['bleu'] <= better['bleu_high']
    paired = bleu.paired(s, samples, s, samples)
    assert paired['bleu'] == paired['bleu_high'] == 0 and paired['bleu_wins'] == paired['chrf_wins'] == 0
    # One sentence better, one worse: the winner changes with the resample.
    mixed = [REFS[0], 'x', REFS[2], 'y']
    m, _, m_samples = bleu.scores(mixed, REFS, bootstrap=200)
    other = ['x', REFS[1], 'y', REFS[3]]
    o, _, o_samples = bleu.scores(other, REFS, bootstrap=200)
    assert 0.05 < bleu.paired(m, m_samples, o, o_samples)['chrf_wins'] < 0.95


def test_scores_and_resamples_equal_sacrebleu_on_the_text():
    """Scores from summed per-sentence statistics are sacrebleu's corpus scores, of the whole
    set and of each resample (rebuilt here from the same seed), also when a resample has no
    4-gram match (BLEU's smoothing) and with an empty hypothesis."""
    from sacrebleu.metrics import BLEU, CHRF

    hyps = ['el perro come .', 'la casa grande es .', '', 'tengo un gato', 'x', REFS[0]]
    refs = REFS + ['sin nada aqui .', 'el perro come pan .']
    s, _, samples = bleu.scores(hyps, refs, bootstrap=8, seed=3)
    assert s['bleu'] == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    assert s['chrf'] == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    rng = np.random.default_rng(3)
    for sample in samples:
        idx = rng.integers(0, len(refs), len(refs))
        h, r = [hyps[i] for i in idx], [[refs[i] for i in idx]]
        np.testing.assert_allclose(sample, [BLEU().corpus_score(h, r).score, CHRF().corpus_score(h, r).score])
    assert len({tuple(x) for x in samples}) > 1


def test_word_dictionary_learns_word_pairs_and_copies_the_unknown():
    pairs = [('the dog eats', 'el perro come'), ('the cat eats', 'el gato come'), ('a dog', 'un perro'),
             ('the house', 'la casa'), ('a cat sleeps', 'un gato duerme'),
             ('the dog sleeps', 'el perro duerme')]  # fmt: skip
    d = bleu.WordDictionary(pairs)
    assert d.table['dog'] == 'perro' and d.table['cat'] == 'gato' and d.table['sleeps'] == 'duerme'
    assert d.translate('The dog, the zebra!') == 'El perro, el zebra!'


@pytest.fixture(scope='module')
def run(bbc, bbc_spm, tmp_path_factory):
    """Two training steps of the translate task on BBC text to itself, scored by `translate`."""
    c = tiny_lm_config(bbc, task='translate', total_steps=2, checkpoint_every=2)
    c.model.arch = 'seq2seq'
    c.data.update(
        source_key='text', target_key='text', vocab_path=bbc_spm, train_split='train[:64]', eval_split='test[:6]'
    )
    c.evals.task = dict(type='task')
    c.evals.tr = dict(type='translate', split='test[:6]', every=0, beam=2, max_len_a=0.0, max_len_b=4, bootstrap=20)
    workdir = str(tmp_path_factory.mktemp('translate_run'))
    return workdir, train_and_evaluate(c, workdir)


def test_translate_evaluator_scores_writes_tsv_and_baselines(run):
    workdir, final = run
    assert final['test_6/tr/copy_bleu'] == pytest.approx(100)  # the reference is the source
    assert final['test_6/tr/bleu'] < 20 and final['test_6/tr/bleu_low'] <= final['test_6/tr/bleu']
    assert final['test_6/tr/dictionary_chrf'] > 50  # every word translates to itself
    # Paired with the model on the same resamples: copying the reference wins every one.
    assert final['test_6/tr/vs_copy_bleu'] == pytest.approx(final['test_6/tr/bleu'] - 100)
    assert final['test_6/tr/vs_copy_bleu_wins'] == 0 and final['test_6/tr/vs_copy_bleu_high'] < 0
    with open(f'{workdir}/translations/test_6_tr.tsv', newline='') as f:
        rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
    assert rows[0] == ['source', 'reference', 'hypothesis'] and len(rows) == 7
    assert all(len(r) == 3 and r[0] == r[1] for r in rows[1:])  # length limits: tests/test_seq2seq.py


def test_translate_cli(run, capsys):
    workdir, _ = run
    assert translate_cli.main(['--workdir', workdir, '--text', 'The economy grew.', '--text', 'Hi', '--beam', '1']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('# checkpoint step 2, beam 1') and len(out) == 3
    assert out[1].startswith('The economy grew. ⟶ ') and out[2].startswith('Hi ⟶ ')
    assert translate_cli.main(['--workdir', workdir, '--text', ' ']) == 2
    assert 'nothing to translate' in capsys.readouterr().err
    assert translate_cli.main(['--workdir', str(workdir) + '/none', '--text', 'a']) == 2
    assert 'config.json not found' in capsys.readouterr().err


def test_translate_evaluator_options_and_task_are_checked(bbc):
    c = tiny_lm_config(bbc)
    c.evals.tr = dict(type='translate')
    with pytest.raises(ConfigError, match=r"needs translate, which task 'lm' .* tasks that do: translate"):
        check_evals(c)
    c.task, c.model.arch = 'translate', 'seq2seq'
    c.evals.tr = dict(type='translate', beam=0)
    with pytest.raises(ConfigError, match=r'config.evals.tr.beam=0 must be >= 1'):
        check_evals(c)


def test_wmt14_config_pipeline_with_mock_data(tmp_path):
    from research.tools import build_spm

    with tfds.testing.mock_data(num_examples=12):
        out = str(tmp_path / 'spm')
        args = ['--dataset', 'wmt14_translate/de-en', '--keys', 'de,en', '--vocab_size', '300', '--out', out]
        assert build_spm.main(args) == 0
        config = load_config('experiments/translation/wmt14_de_en.py:runlocal', [f'data.vocab_path={out}.model'])
        assert len(translate_data.read_pairs(config, 'train', collections.Counter(), limit=5)) == 5  # 12 stored
        final = train_and_evaluate(config, str(tmp_path / 'run'))
    assert {'val/loss', 'test/bleu/bleu', 'test/bleu/chrf', 'test/bleu/copy_bleu', 'val/val_bleu/bleu'} <= set(final)
    with open(tmp_path / 'run' / 'translations' / 'test_bleu.tsv') as f:
        assert len(f.readlines()) == 13
