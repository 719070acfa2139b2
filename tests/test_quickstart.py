"""The quickstart's promise, on the real artifacts `make data` builds (slow: ~5 min)."""

import os

import pytest

from research.config import load_config
from research.metric_writer import read_metrics
from research.train import train_and_evaluate


@pytest.mark.slow
def test_quickstart_beats_unigram_and_quarter_of_start(tmp_path):
    config = load_config('experiments/quickstart.py', ['progress_bar=False'])
    assert os.path.isfile(config.data.vocab_path), 'run `make data` first'
    result = train_and_evaluate(config, str(tmp_path))
    start = next(e['val/perplexity'] for e in read_metrics(str(tmp_path)) if e['step'] == 0 and 'val/perplexity' in e)
    assert result['val/perplexity'] < 0.25 * start
    assert result['val/perplexity'] < result['val/unigram_perplexity']
    assert os.path.getsize(tmp_path / 'loss_curve.png') > 10_000
    assert len((tmp_path / 'samples.txt').read_text().strip().splitlines()) >= 3
