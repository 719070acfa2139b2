"""The runlocal few-shot sweep on the real artifacts (slow: minutes; `make test-slow`)."""

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_runlocal_sweep_writes_the_table_and_reruns_in_seconds(tmp_path):
    assert os.path.isfile(os.path.join(ROOT, 'artifacts', 'bbc_news.words.txt')), 'run `make data` first'
    cmd = [
        sys.executable,
        '-m',
        'research.sweep',
        '--config',
        'experiments/fewshot/bbc_news.py:runlocal',
        '--workdir',
        str(tmp_path),
    ]
    t = time.time()
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f'runlocal sweep: {time.time() - t:.0f} s')
    assert first.returncode == 0, first.stderr[-2000:]
    table = (tmp_path / 'results.csv').read_text()
    md = (tmp_path / 'results.md').read_text()
    assert ' 0 failed' in md and '| minilm | zero_shot |  | test | descriptions |' in md
    assert os.path.getsize(tmp_path / 'plot_k.png') > 10_000
    t = time.time()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f'rerun: {time.time() - t:.0f} s')
    assert again.returncode == 0 and 'running' not in again.stdout
    assert (tmp_path / 'results.csv').read_text() == table
