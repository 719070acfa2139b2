"""Reading TFDS text datasets: shared by every pipeline and by the offline tools.

Datasets are prepared as ArrayRecord files and read through random-access data sources
(`tfds.data_source`), which the grain training pipelines index directly.
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
from collections.abc import Callable, Iterator

import tensorflow as tf
import tensorflow_datasets as tfds

# Dataset name -> module that defines (and, on import, registers) its local builder.
LOCAL_BUILDERS = types.MappingProxyType(
    {
        'bbc_news': 'research.data.bbc_news',
        'bible': 'research.data.bible',
        'bible_en_es': 'research.data.bible_en_es',
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


FILE_FORMAT = 'array_record'  # random access: tfds.data_source, grain


def prepare(make_builder: Callable[[], tfds.core.DatasetBuilder]) -> dict[str, int]:
    """Prepares the dataset of the builder `make_builder()` returns as ArrayRecord files (never
    downloading from GCS); returns the split sizes. A dataset prepared earlier in another file
    format (TFRecord, before the grain pipeline) is deleted and prepared again by a new builder
    (a builder's format is fixed once it has read its files); one in ArrayRecord is left as it is."""
    builder = make_builder()
    if builder.is_prepared() and builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
        tf.io.gfile.rmtree(builder.data_path)
        builder = make_builder()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False), file_format=FILE_FORMAT
    )
    return {split: info.num_examples for split, info in sorted(builder.info.splits.items())}


def load_split(name: str, split: str, data_dir: str | None):
    """Returns one split of a prepared TFDS dataset as a random-access source in stored order:
    `len(src)`, `src[i]` and iteration give dicts of numpy values (text as bytes).

    Args:
        name: TFDS name, e.g. 'bbc_news', 'imdb_reviews', 'glue/sst2'.
        split: split name or TFDS split expression ('train[:90%]', 'train+validation').
        data_dir: TFDS data dir; None or '' for the TFDS default.

    Raises:
        FileNotFoundError: the dataset is not prepared in `data_dir` (never downloads), or it
            is prepared in a file format without random access (TFRecord).
        ValueError: `split` names a split the dataset does not have.
    """
    builder = get_builder(name, data_dir)
    available = sorted(builder.info.splits.keys())
    # info.splits is empty for an unprepared builder, and under tfds.testing.mock_data;
    # as_data_source tells the two apart (it is patched by mock_data).
    unknown = [s for s in _split_names(split) if s not in available]
    if available and unknown:
        raise ValueError(f'Dataset {name!r} has no split {unknown[0]!r} (in {split!r}); available splits: {available}')
    if available and builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
        fix = (
            f'{prepare_hint(name, data_dir)} again'
            if is_local(name)
            else f'convert it: tfds convert_format --dataset_dir {builder.data_path} --out_file_format array_record'
        )
        raise FileNotFoundError(
            f'Dataset {name!r} in {builder.data_path} is prepared as {builder.info.file_format.value} files; the '
            f'input pipeline reads ArrayRecord (random access, O(1) resume): {fix}.'
        )
    try:
        return builder.as_data_source(split=split)
    except (AssertionError, ValueError, NotImplementedError) as e:  # tfds: no files (of a random-access format)
        if available:
            raise
        where = data_dir or f'{builder.data_dir_root} (TFDS default)'
        raise FileNotFoundError(
            f'Dataset {name!r} is not prepared in data_dir {where}: {prepare_hint(name, data_dir)}.'
        ) from e


def features(name: str, data_dir: str | None) -> dict:
    """The dataset's feature dict (name -> tfds feature), e.g. to check configured keys."""
    return dict(get_builder(name, data_dir).info.features)


def check_keys(name: str, data_dir: str | None, **keys: str):
    """Fails now (not mid-run) if a configured key (config.data.<field> = key) is not a feature."""
    have = features(name, data_dir)
    for field, key in keys.items():
        if key and key not in have:
            raise ValueError(f'config.data.{field}={key!r} is not a feature of {name!r}; features: {sorted(have)}')


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
    src = load_split(name, split, data_dir)
    if text_key not in features(name, data_dir):
        raise KeyError(f'Dataset {name!r} has no feature {text_key!r}; features: {sorted(features(name, data_dir))}')
    for ex in src:
        text = decode_text(ex[text_key], stats)
        if text is not None:
            yield text
