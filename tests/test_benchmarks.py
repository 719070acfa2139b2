"""The benchmark runner's bookkeeping: interleaving order and per-round ratios (no timing)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import run  # noqa: E402


def test_rounds_interleave_and_ratios_use_the_runs_around_each_reference(monkeypatch):
    calls = []
    times = iter([0.10, 0.20, 0.30, 0.40, 0.50])  # ours, hf, ours, hf, ours (step seconds)

    def fake_measure(impl, case, args):
        calls.append(impl)
        return dict(step_s=next(times), compile_s=1.0, memory_bytes=0, params=1, flops_per_token=1.0)

    monkeypatch.setattr(run, 'measure', fake_measure)
    out = run.run_case('train:decoder:tiny', argparse.Namespace(rounds=2), reference=True)
    assert calls == ['ours', 'hf', 'ours', 'hf', 'ours']
    tokens = 16 * 128  # the tiny shape's batch × seq_len
    expected = [(tokens / 0.1 + tokens / 0.3) / 2 / (tokens / 0.2), (tokens / 0.3 + tokens / 0.5) / 2 / (tokens / 0.4)]
    assert out['ratios'] == expected
    row = run.fmt_row(out, peak=1e9)
    assert row.startswith('| train:decoder:tiny |') and f'{sum(expected) / 2:.2f}x' in row


def test_decode_rate_counts_new_tokens_of_every_row():
    assert run.rate('decode:8', dict(call_s=2.0)) == 8 * 128 / 2.0
