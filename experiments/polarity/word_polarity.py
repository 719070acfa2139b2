"""Local TFDS builder `word_polarity`: English adjectives labelled negative / positive.

Kept outside the `research` package on purpose: a user's own dataset is this one builder
file plus a config. Prepare it once (import this module, or load it by file path, and call
`research.data.sources.prepare(lambda: WordPolarity(data_dir=DIR))`, or `python -m
research.tools.prepare_data --builder THIS_FILE`: ArrayRecord files); afterwards they are
read back without this module by `tfds.builder_from_directory(DIR/word_polarity/1.0.0)`,
or by `tfds.builder('word_polarity', data_dir=DIR)` (so research.data.sources.load_split),
which in tfds 4.9 falls back to the prepared files when no builder class of that name is
registered and no keyword other than data_dir/version/config is given (lexicon_path would
need this code). tests/test_word_polarity.py checks all three in a process that never
imports this file.

Source: the subjectivity lexicon of Pattern/TextBlob (De Smedt & Daelemans, PDDL) shipped in
the `textblob` wheel (`pip install --no-deps textblob`), file `textblob/en/en-sentiment.xml`.
The package is located with `importlib.util.find_spec` and never imported (it imports nltk).
Each `<word form=... pos=... polarity=... />` element is one sense of a word form, polarity
in [-1, 1]; a form can have several senses with different polarities ("ridiculous" is
negative when pitiful, positive when humorous).

Selection, in this order:
  1. Entries whose Penn Treebank `pos` starts with 'JJ' (JJ, JJS) are kept; other tags
     (NN, VB, RB, UH, ...) are dropped, and so are the 6 entries with an empty pos: nothing
     says they are adjectives, and two carry a noun/verb tag in the `sense` attribute.
  2. Entries are grouped by lowercase form ("Good" and "good" are one word); a form's
     polarity is the mean over its senses, computed exactly from the decimal strings.
  3. Forms that are not a single alphabetic word (str.isalpha) are dropped: multiword
     forms ("full of life"), hyphenated ones ("light-hearted", which the project's word
     tokenizer splits into three tokens anyway) and forms with digits ("13th").
  4. Forms with |mean polarity| < THRESHOLD (0.1) are dropped as neutral: plain factual
     adjectives score 0.0 ("above", "younger"), faintly coloured ones -0.05. A mean of
     exactly 0.1 is kept: "abridged" (0.1) and "lonely" (-0.6 and 0.4), which float
     arithmetic would put at -0.0999... and drop. The rest are labelled by sign.
The builder prints these counts. On textblob 0.20.1: 2,918 entries (1,528 distinct forms);
274 entries not adjectives (6 of them with an empty pos) dropped, leaving 2,644 adjective
entries in 1,342 forms; 54 forms not single alphabetic words dropped; 290 neutral dropped;
998 words kept, 502 positive and 496 negative; train 787, validation 102, test 109.

Features:
  word:     the lowercase form, e.g. "abhorrent".
  label:    ClassLabel ('negative', 'positive'), the sign of `polarity`.
  polarity: float32, the mean polarity over the form's adjective senses.
  senses:   int32, how many lexicon entries were averaged.

Splits, deterministic and independent of file order: bucket = first 8 bytes of
sha256(word as UTF-8) as a big-endian int, mod 10; buckets 0-7 -> train, 8 -> validation,
9 -> test (~80/10/10). Examples are keyed by the word and generated in sorted order.
"""

import collections
import fractions
import hashlib
import importlib.util
import pathlib
import xml.etree.ElementTree as ElementTree

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

LABELS = ('negative', 'positive')
SPLITS = ('train', 'validation', 'test')
# Smallest |mean polarity| a word needs to be labelled. Entries are graded in steps of 0.1
# (plus 17 at -0.05), so a word is kept when its senses average at least one grade from 0.0.
THRESHOLD = fractions.Fraction('0.1')
INSTALL = 'pip install --no-deps textblob'


def lexicon_path() -> pathlib.Path:
    """Returns the path of `en-sentiment.xml` in the installed textblob package.

    Raises:
        FileNotFoundError: textblob is not installed or lacks the lexicon.
    """
    spec = importlib.util.find_spec('textblob')
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = pathlib.Path(location) / 'en' / 'en-sentiment.xml'
        if path.is_file():
            return path
    raise FileNotFoundError(
        f'TextBlob sentiment lexicon not found: install it with `{INSTALL}`'
        + (f' (textblob at {locations} has no en/en-sentiment.xml)' if locations else '')
    )


def split_of(word: str) -> str:
    """Returns the split ('train'/'validation'/'test') of a word, from its sha256."""
    bucket = int.from_bytes(hashlib.sha256(word.encode('utf-8')).digest()[:8], 'big') % 10
    return SPLITS[0] if bucket < 8 else SPLITS[bucket - 7]


def polar_words(path, stats: collections.Counter | None = None) -> dict[str, dict]:
    """Reads the lexicon at `path` and returns {word: features} for the kept words, sorted.

    Args:
        path: an en-sentiment.xml file.
        stats: if given, receives the counts of each selection step (see the module docstring).
    """
    stats = collections.Counter() if stats is None else stats
    senses = collections.defaultdict(list)  # lowercase form -> polarity of each adjective entry
    for entry in ElementTree.parse(path).getroot().iter('word'):
        stats['entries'] += 1
        if not entry.get('pos', '').startswith('JJ'):
            stats['not_adjective_entries'] += 1
            continue
        # Fractions of the decimal strings: a mean like (0.3 + 0 + 0) / 3 is exactly 0.1 and
        # stays on the kept side of THRESHOLD, where float arithmetic gives 0.0999...
        senses[entry.get('form', '').strip().lower()].append(fractions.Fraction(entry.get('polarity')))
    stats['adjective_entries'] = stats['entries'] - stats['not_adjective_entries']
    stats['adjective_forms'] = len(senses)
    words = {}
    for word in sorted(senses):
        if not word.isalpha():
            stats['not_alphabetic'] += 1
            continue
        mean = sum(senses[word]) / len(senses[word])
        if abs(mean) < THRESHOLD:
            stats['neutral'] += 1
            continue
        label = LABELS[mean > 0]
        stats[label] += 1
        words[word] = {'word': word, 'label': label, 'polarity': float(mean), 'senses': len(senses[word])}
    return words


class WordPolarity(tfds.core.GeneratorBasedBuilder):
    """Adjective sentiment: word -> negative / positive, from the TextBlob lexicon."""

    # TFDS reads optional metadata (checksums.tsv, CITATIONS.bib, ...) from the folder of the
    # builder's package, found by importing the first component of __module__; a file loaded by
    # path is no package, and that import fails. This folder is where such files would go.
    pkg_dir_path = epath.Path(__file__).parent
    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'TextBlob adjectives, mean sense polarity, |mean| >= 0.1, word-hash splits.'}

    def __init__(self, *, lexicon_path: str | None = None, **kwargs):
        # Resolved only when preparing: reading a prepared dataset must not need textblob.
        self._lexicon_path = lexicon_path
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    'word': tfds.features.Text(),
                    'label': tfds.features.ClassLabel(names=LABELS),
                    'polarity': tfds.features.Scalar(dtype=np.float32),
                    'senses': tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=('word', 'label'),
            homepage='https://github.com/sloria/TextBlob',
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing is downloaded: the installed lexicon is read.
        stats = collections.Counter()
        words = polar_words(self._lexicon_path or lexicon_path(), stats)
        print(
            f'word_polarity: {stats["entries"]} entries, {stats["not_adjective_entries"]} not adjectives dropped; '
            f'{stats["adjective_forms"]} adjective forms, {stats["not_alphabetic"]} not single alphabetic words '
            f'dropped, {stats["neutral"]} neutral (|mean| < {float(THRESHOLD)}) dropped; kept {len(words)}: '
            f'{stats["positive"]} positive, {stats["negative"]} negative'
        )
        return {split: self._generate_examples(words, split) for split in SPLITS}

    def _generate_examples(self, words: dict[str, dict], split: str):
        for word, example in words.items():
            if split_of(word) == split:
                yield word, example
