"""Local TFDS builder `bible_en_es`: English–Spanish verse pairs for translation.

English: the World English Bible; Spanish: the Reina-Valera 1909, both exported offline with
`diatheke` (SWORD) and aligned by verse reference (book, chapter, verse). System packages
(Debian): `apt-get install -y --no-install-recommends diatheke sword-text-web
sword-text-sparv` (`make system-deps`).

A verse that is missing or empty on either side is dropped, as is a pair where either side
has more than MAX_WORDS words; the builder prints each count. Splits are by book with the
`bible` builder's rule (`bible.split_of`), so no book is in two splits (and the English
chapters of a test book are never in `bible`'s train split either).

Features: `en`, `es`, `book`, `id` ("John/3/16").
"""

import collections

import tensorflow_datasets as tfds

from research.data import bible

MODULES = {'en': 'engWEB2015eb', 'es': 'spaRV1909eb'}
KEYS = 'Genesis 1:1-Revelation 22:21'
INSTALL = 'apt-get install -y --no-install-recommends diatheke sword-text-web sword-text-sparv'
MAX_WORDS = 80


def aligned_pairs(en: dict, es: dict, stats: collections.Counter) -> list[tuple]:
    """[(key, english, spanish)] of the references both sides have, non-empty and at most
    MAX_WORDS words each, in English order; `stats` counts what is dropped and why."""
    stats['en_verses'], stats['es_verses'] = len(en), len(es)
    pairs = []
    for key, english in en.items():
        spanish = es.get(key)
        if spanish is None:
            stats['missing_in_es'] += 1
        elif not english or not spanish:
            stats['empty'] += 1
        elif max(len(english.split()), len(spanish.split())) > MAX_WORDS:
            stats['too_long'] += 1
        else:
            pairs.append((key, english, spanish))
    stats['missing_in_en'] = len(es.keys() - en.keys())
    stats['kept'] = len(pairs)
    return pairs


class BibleEnEs(tfds.core.GeneratorBasedBuilder):
    """WEB (English) / Reina-Valera 1909 (Spanish) verse pairs; splits by book."""

    VERSION = tfds.core.Version('2.0.0')
    RELEASE_NOTES = {
        '1.0.0': 'WEB and RV1909 verses aligned by reference; splits by book.',
        '2.0.0': 'The `bible` 2.0.0 splits: every tenth book held out (31,000 / 47 / 25 pairs before).',
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({k: tfds.features.Text() for k in ('en', 'es', 'book', 'id')}),
            supervised_keys=('en', 'es'),
            homepage='https://crosswire.org/sword/',
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded: diatheke reads the installed SWORD modules
        sides = {lang: {v[:3]: v[3] for v in bible.verses(module, KEYS, INSTALL)} for lang, module in MODULES.items()}
        stats = collections.Counter()
        pairs = aligned_pairs(sides['en'], sides['es'], stats)
        print(
            f'bible_en_es: {stats["en_verses"]} English and {stats["es_verses"]} Spanish verses; dropped '
            f'{stats["missing_in_es"]} missing in Spanish, {stats["missing_in_en"]} missing in English, '
            f'{stats["empty"]} empty, {stats["too_long"]} longer than {MAX_WORDS} words; kept {stats["kept"]} pairs'
        )
        return {split: self._generate_examples(pairs, split) for split in ('train', 'validation', 'test')}

    def _generate_examples(self, pairs, split):
        for (book, chapter, verse), english, spanish in pairs:
            if bible.split_of(book) == split:
                key = f'{book}/{chapter}/{verse}'
                yield key, {'en': english, 'es': spanish, 'book': book, 'id': key}
