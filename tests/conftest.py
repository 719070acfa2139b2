"""Test session set-up (before jax is imported): 8 fake CPU devices for mesh code, and one
persistent compilation cache for the session."""

import atexit
import os
import shutil
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The tiny models compile the same programs in many tests and in the processes tests start
# (CLI, sweeps, multi-host): a JAX compilation cache in a new temporary dir, shared through the
# environment by those processes and by pytest-xdist workers, removed when this session ends.
# Nothing outlives the session, so no run depends on an earlier one; set JAX_COMPILATION_CACHE_DIR
# to choose a dir yourself (then kept).
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
    os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='wordlab-test-jax-cache-')
    atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def bbc(tmp_path_factory):
    """BBC News prepared into a temporary TFDS dir, with a small word vocab built on train."""
    from research.data import bbc_news, sources
    from research.text.vocab import Vocab
    from research.text.words import WordTokenizer
    from research.tools.build_vocab import count_tokens

    root = tmp_path_factory.mktemp('bbc')
    data_dir = str(root / 'tfds')
    sources.prepare(lambda: bbc_news.BbcNews(data_dir=data_dir))
    counts = count_tokens(sources.iter_texts('bbc_news', 'train', data_dir), WordTokenizer())
    vocab_path = str(root / 'vocab.txt')
    Vocab.build(counts, min_count=5, max_size=2000).save(vocab_path)
    return dict(data_dir=data_dir, vocab_path=vocab_path)


@pytest.fixture(scope='session')
def bbc_spm(bbc, tmp_path_factory):
    """A small SentencePiece model of BBC News text (for the translate task: text to itself)."""
    from research.data import sources
    from research.text import spm

    prefix = str(tmp_path_factory.mktemp('spm') / 'bbc')
    spm.train(sources.iter_texts('bbc_news', 'validation', bbc['data_dir']), prefix, vocab_size=400)
    return prefix + '.model'


@pytest.fixture(scope='session')
def wic(tmp_path_factory):
    """A miniature WordNet (TFDS data_dir) whose supersense (animal / food) shows only in the context."""
    from test_wordnet import write_lexicon

    from research.data import sources, wordnet

    root = tmp_path_factory.mktemp('wic')
    names = [''.join('bdfgklmnpr'[int(d)] + 'aeiou'[int(d) % 5] for d in f'{i:03d}') for i in range(160)]
    synsets = [
        ('noun', 5, (n,), (f'the {n} ate grass in the field', f'a wild {n} ran home'))
        if i % 2
        else ('noun', 13, (n,), (f'we cooked the {n} for dinner', f'she ate a fresh {n} with bread'))
        for i, n in enumerate(names)
    ]
    data_dir = str(root / 'tfds')
    wordnet_dir = write_lexicon(root / 'wn', synsets)
    sources.prepare(lambda: wordnet.WordnetWic(data_dir=data_dir, wordnet_dir=wordnet_dir))
    return data_dir


def tiny_lm_config(bbc, **overrides):
    """A seconds-long LM config on the prepared BBC data."""
    from research import config as config_lib

    c = config_lib.base_config()
    c.data.update(data_dir=bbc['data_dir'], vocab_path=bbc['vocab_path'], seq_len=32, max_eval_sequences=24)
    c.model.update(num_layers=1, d_model=32, num_heads=2, mlp_dim=64, max_len=64, dropout=0.1)
    c.update(
        batch_size=16,
        eval_batch_size=16,
        total_steps=6,
        log_every=2,
        eval_every=0,
        checkpoint_every=3,
        keep_checkpoints=5,
        progress_bar=False,
        peak_flops=1e9,
    )
    c.optim.warmup_steps = 2
    for key, value in overrides.items():
        section, _, leaf = key.rpartition('__')
        (c[section] if section else c)[leaf] = value
    return c


def tiny_lm_experiment(bbc, path, **overrides) -> str:
    """An experiment file giving tiny_lm_config(bbc, **overrides): for tests that run the CLI
    in another process."""
    tests = os.path.dirname(os.path.abspath(__file__))
    with open(path, 'w') as f:
        f.write(
            f'import sys\nsys.path.insert(0, {tests!r})\nfrom conftest import tiny_lm_config\n\n\n'
            f"def get_config(arg=''):\n    return tiny_lm_config({dict(bbc)!r}, **{overrides!r})\n"
        )
    return str(path)
