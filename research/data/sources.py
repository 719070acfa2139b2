"""Reading TFDS text datasets: shared by every pipeline and by the offline tools.

Public TFDS datasets are read by name; local builders (offline corpora, listed in
LOCAL_BUILDERS) are registered by importing their module first. Nothing here
downloads or prepares data: an unprepared dataset is an error that says how to
prepare it.
"""

import collections
import difflib
import importlib
import re
import types
from collections.abc import Iterator

import tensorflow as tf
import tensorflow_datasets as tfds

# Dataset name -> module that defines (and, on import, registers) its local builder.
LOCAL_BUILDERS = types.MappingProxyType(
    {
        'bbc_news': 'research.data.bbc_news',
        'bible': 'research.data.bible',
        'wordnet_wic': 'research.data.wordnet',
    }
)


def _base_name(name: str) -> str:
    """'bbc_news:1.0.0' or 'glue/sst2' -> the registered builder name."""
    return name.split(':')[0].split('/')[0]


def is_local(name: str) -> bool:
    """Whether `name` is built by a local builder in research.data."""
    return _base_name(name) in LOCAL_BUILDERS


def get_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """Returns the TFDS builder for `name`, registering local builders first."""
    if is_local(name):
        importlib.import_module(LOCAL_BUILDERS[_base_name(name)])
    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as e:  # its message lists every TFDS name, one per line
        known = [line.strip()[2:] for line in str(e).splitlines() if line.strip().startswith('- ')]
        close = difflib.get_close_matches(_base_name(name), known + list(LOCAL_BUILDERS), n=3)
        raise FileNotFoundError(
            f'no dataset {name!r} (config.data.name) in TFDS, in research/data or prepared in data_dir '
            f'{data_dir or "(TFDS default)"}; '
            + (f'did you mean {" or ".join(map(repr, close))}? ' if close else '')
            + 'a dataset of your own: python -m research.tools.prepare_data --builder FILE.py'
        ) from None


def prepare_hint(name: str, data_dir: str | None) -> str:
    """Returns how to prepare `name` into `data_dir`, as one sentence."""
    if is_local(name):
        flag = f' --data_dir {data_dir}' if data_dir else ''
        return f'run `python -m research.tools.prepare_data --dataset {name}{flag}`'
    return (
        f'it is a public TFDS dataset: prepare it on a machine with network access '
        f'(tfds.builder({name!r}).download_and_prepare()) and copy the data dir here'
    )


def _split_names(split: str) -> list[str]:
    """'train[:10%]+validation' -> ['train', 'validation']."""
    return [re.sub(r'\[.*$', '', part).strip() for part in split.split('+')]


def load_split(name: str, split: str, data_dir: str | None) -> tf.data.Dataset:
    """Returns one split of a prepared TFDS dataset, in stored order (no file shuffling).

    Args:
        name: TFDS name, e.g. 'bbc_news', 'imdb_reviews', 'glue/sst2'.
        split: split name or TFDS split expression ('train[:90%]', 'train+validation').
        data_dir: TFDS data dir; None or '' for the TFDS default.

    Raises:
        FileNotFoundError: the dataset is not prepared in `data_dir` (never downloads).
        ValueError: `split` names a split the dataset does not have.
    """
    builder = get_builder(name, data_dir)
    available = sorted(builder.info.splits.keys())
    # info.splits is empty for an unprepared builder, and under tfds.testing.mock_data;
    # as_dataset tells the two apart (it is patched by mock_data).
    unknown = [s for s in _split_names(split) if s not in available]
    if available and unknown:
        raise ValueError(f'Dataset {name!r} has no split {unknown[0]!r} (in {split!r}); available splits: {available}')
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as e:  # tfds: "could not find data in ..."
        where = data_dir or f'{builder.data_dir_root} (TFDS default)'
        raise FileNotFoundError(
            f'Dataset {name!r} is not prepared in data_dir {where}: {prepare_hint(name, data_dir)}.'
        ) from e
    # No tf.data autotuning: deleting an iterator waits for its autotune thread's next
    # wake-up (a lost-wake-up race in TF: up to a minute), which stalled every unfinished
    # iterator -- the endless train stream at exit, pytest's final gc. These pipelines are
    # sequential reads; autotuning has nothing to tune.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def decode_utf8(raw: bytes | str, stats: collections.Counter) -> str:
    """Decodes stored bytes as UTF-8; invalid bytes become U+FFFD and are counted ('non_utf8')."""
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode('utf-8')
    except UnicodeDecodeError:
        stats['non_utf8'] += 1
        return bytes(raw).decode('utf-8', errors='replace')


def decode_text(raw: bytes | str, stats: collections.Counter) -> str | None:
    """Decodes one stored text; returns None (and counts it) if it is blank.

    Counts in `stats`: 'docs' (every call), 'non_utf8' (invalid UTF-8, decoded with
    U+FFFD replacements), 'empty' (blank after stripping; returns None).
    """
    stats['docs'] += 1
    text = decode_utf8(raw, stats).strip()
    if not text:
        stats['empty'] += 1
        return None
    return text


def iter_texts(
    name: str, split: str, data_dir: str | None, text_key: str = 'text', stats: collections.Counter | None = None
) -> Iterator[str]:
    """Yields the decoded, non-blank texts of a split in stored order.

    Args:
        name, split, data_dir: as for `load_split`.
        text_key: the feature holding the text.
        stats: optional Counter updated as in `decode_text`.

    Raises:
        KeyError: the dataset has no feature `text_key` (lists the features).
    """
    stats = collections.Counter() if stats is None else stats
    ds = load_split(name, split, data_dir)
    features = ds.element_spec
    if not isinstance(features, dict) or text_key not in features:
        keys = sorted(features) if isinstance(features, dict) else features
        raise KeyError(f'Dataset {name!r} has no feature {text_key!r}; features: {keys}')
    for raw in ds.map(lambda ex: ex[text_key]).as_numpy_iterator():
        text = decode_text(raw, stats)
        if text is not None:
            yield text
