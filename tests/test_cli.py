"""Every `python -m research…` entry point starts without TensorFlow's start-up lines on stderr
(research/__init__.py sets TF's logging defaults before anything imports it)."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runs a module as `python -m` does, then says whether TensorFlow was imported (a run that
# never imports it would pass the test without testing anything).
PROBE = (
    'import atexit, runpy, sys\n'
    "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))\n"
    'sys.argv[:2] = sys.argv[1:2]\n'
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
)
TF_LINE = re.compile(
    r'^[IWEF]\d{4} |All log messages before absl|oneDNN|cpu_feature_guard|This TensorFlow binary|'
    r'Unable to register cu|cuda_'
)
EXPERIMENT = """from research.config import base_config


def get_config(arg=''):
    c = base_config()
    c.data.update(data_dir={data_dir!r}, vocab_path={vocab!r}, seq_len=16)
    c.model.update(num_layers=1, d_model=16, num_heads=2, mlp_dim=32, max_len=32)
    c.update(batch_size=8, total_steps=2, progress_bar=False, peak_flops=1e9)
    return c


def get_sweep(arg=''):
    return [dict(seed=0)]
"""


def run_quietly(module, *args):
    """Runs `python -m module args…` with no TF logging settings of the caller's; returns its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS')}
    cmd = [sys.executable, '-c', PROBE, module, *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert 'tensorflow imported: True' in done.stdout, f'{module} {args} never imported tensorflow: {done.stderr}'
    chatter = [line for line in done.stderr.splitlines() if TF_LINE.search(line)]
    assert not chatter, f'{module}: TF start-up lines on stderr: {chatter}'
    return done.stderr


@pytest.mark.parametrize('module', ['prepare_data', 'build_vocab', 'build_spm'])
def test_tools_import_tensorflow_quietly(module):  # at module level: before their main() runs
    run_quietly(f'research.tools.{module}', '--help')


@pytest.mark.slow  # ~7 s each; they import TF after their main() starts, quiet before too
def test_generate_and_translate_fail_quietly(tmp_path):
    assert 'config.json not found' in run_quietly('research.generate', '--workdir', str(tmp_path), '--prompt', 'hi')
    assert 'config.json not found' in run_quietly('research.translate', '--workdir', str(tmp_path), '--text', 'hi')


@pytest.mark.slow  # ~10 s each: a config checked, then jax, flax and TF imported
def test_config_clis_run_quietly(tmp_path):
    from research.text.vocab import Vocab

    vocab = str(tmp_path / 'vocab.txt')
    Vocab.build({'word': 3}, min_count=1).save(vocab)
    exp = tmp_path / 'exp.py'
    exp.write_text(EXPERIMENT.format(data_dir=str(tmp_path / 'unprepared'), vocab=vocab))
    for module in ('research.main', 'research.evaluate'):  # they stop at run time: no prepared data
        run_quietly(module, '--config', str(exp), '--workdir', str(tmp_path / module))
    run_quietly('research.tools.plan', '--config', str(exp), '--mesh', 'data=2', '--vocab_size', '100')
    run_quietly('research.sweep', '--config', str(exp), '--workdir', str(tmp_path / 's'), '--dry_run')


def test_every_console_script_names_a_cli_main():
    import importlib

    with open(os.path.join(ROOT, 'pyproject.toml'), encoding='utf-8') as f:  # no tomllib on python 3.10
        section = f.read().split('[project.scripts]\n', 1)[1].split('\n[', 1)[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, re.M))
    modules = {target.partition(':')[0] for target in scripts.values()}
    # every `python -m research…` CLI has its script (tools and the run entry points)
    assert modules == {
        'research.main',
        'research.evaluate',
        'research.sweep',
        'research.generate',
        'research.translate',
        'research.tools.prepare_data',
        'research.tools.build_vocab',
        'research.tools.build_spm',
        'research.tools.plan',
    }
    for name, target in scripts.items():
        module, _, function = target.partition(':')
        entry = getattr(importlib.import_module(module), function)
        with pytest.raises(SystemExit) as e:  # argparse's --help: the CLI parses its own flags
            entry(['--help'])
        assert e.value.code == 0, name
