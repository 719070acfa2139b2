"""Local TFDS builder `bible`: World English Bible, King James Version and Spurgeon's
Treasury of David, exported offline with `diatheke` (SWORD), one document per chapter.

System packages (Debian): `apt-get install -y --no-install-recommends diatheke
sword-text-web sword-text-kjv sword-comm-tdavid` (`make system-deps`). Text is exported as
OSIS, not plain: plain output glues adjacent words ("Godcreated"); from OSIS, word
elements are separated, notes dropped, tags stripped, entities unescaped.

Features: `text` (a chapter), `work` ('WEB', 'KJV', 'TDavid'), `book`, `id`
("WEB/Genesis/1"). Splits are by book (`split_of`: every tenth book in canonical order is
held out), shared by all works — the two Bibles share verses, so a book is never in two
splits, and the Treasury of David (a commentary on Psalms) goes wherever Psalms goes.
"""

import html
import itertools
import re
import shutil
import subprocess

import tensorflow_datasets as tfds

WORKS = {
    'WEB': ('engWEB2015eb', 'Genesis 1:1-Revelation 22:21'),
    'KJV': ('engKJV2006eb', 'Genesis 1:1-Revelation 22:21'),
    'TDavid': ('TDavid', 'Psalms 1:1-Psalms 150:6'),
}
INSTALL = 'apt-get install -y --no-install-recommends diatheke sword-text-web sword-text-kjv sword-comm-tdavid'
# A verse key at a line start, after an optional heading diatheke leaks there (psalm titles,
# sometimes a stale one before another book's first verse; headings are dropped). Book
# names: capitalised words joined by of/the/and, an optional roman-numeral prefix.
VERSE = re.compile(
    r'^.*?((?:(?:I{1,3}|IV) )?[A-Z][a-z]+(?: (?:of|the|and|[A-Z(][A-Za-z)]*))*) '
    r'(\d+):(\d+): ',
    re.M,
)


# The 66 books in canonical order, spelled as SWORD's modules spell them.
BOOKS = (
    'Genesis', 'Exodus', 'Leviticus', 'Numbers', 'Deuteronomy', 'Joshua', 'Judges', 'Ruth', 'I Samuel',
    'II Samuel', 'I Kings', 'II Kings', 'I Chronicles', 'II Chronicles', 'Ezra', 'Nehemiah', 'Esther', 'Job',
    'Psalms', 'Proverbs', 'Ecclesiastes', 'Song of Solomon', 'Isaiah', 'Jeremiah', 'Lamentations', 'Ezekiel',
    'Daniel', 'Hosea', 'Joel', 'Amos', 'Obadiah', 'Jonah', 'Micah', 'Nahum', 'Habakkuk', 'Zephaniah', 'Haggai',
    'Zechariah', 'Malachi', 'Matthew', 'Mark', 'Luke', 'John', 'Acts', 'Romans', 'I Corinthians',
    'II Corinthians', 'Galatians', 'Ephesians', 'Philippians', 'Colossians', 'I Thessalonians',
    'II Thessalonians', 'I Timothy', 'II Timothy', 'Titus', 'Philemon', 'Hebrews', 'James', 'I Peter',
    'II Peter', 'I John', 'II John', 'III John', 'Jude', 'Revelation of John',
)  # fmt: skip
# WEB's deuterocanonical books: in no other work here, nor in the Spanish of `bible_en_es`.
DEUTEROCANON = (
    'Tobit', 'Judith', 'Esther (Greek)', 'Wisdom', 'Sirach', 'Baruch', 'Prayer of Azariah', 'Susanna',
    'Bel and the Dragon', 'I Maccabees', 'II Maccabees', 'I Esdras', 'Prayer of Manasses', 'Additional Psalm',
    'III Maccabees', 'II Esdras', 'IV Maccabees',
)  # fmt: skip


def split_of(book: str) -> str:
    """'train' / 'validation' / 'test' for a book name: every tenth book in canonical order is
    held out, alternately for validation (books 10, 30, 50: II Samuel, Amos, Philippians) and
    test (20, 40, 60: Proverbs, Matthew, I Peter) — 90 / 3 / 7% of the canon's verses, each
    held-out set spread over it. The deuterocanon trains. (Version 1's sha256 buckets of the
    names held out II Thessalonians, Tobit and Philemon, 0.2% of the canon's verses: too few to
    measure anything on.)"""
    if book in DEUTEROCANON:
        return 'train'
    if book not in BOOKS:
        raise ValueError(f'unknown Bible book {book!r}: split_of knows bible.BOOKS and bible.DEUTEROCANON')
    n = BOOKS.index(book) + 1
    return 'train' if n % 10 else ('validation' if n % 20 == 10 else 'test')


def osis_to_text(fragment: str) -> str:
    """One verse of diatheke OSIS output -> plain text."""
    fragment = re.sub(r'<note\b.*?</note>', ' ', fragment, flags=re.S)
    fragment = re.sub(r'</w>(?=<w[ >])', ' ', fragment)  # adjacent words need a space
    text = html.unescape(re.sub(r'<[^>]+>', '', fragment))
    return ' '.join(text.split())


def verses(module: str, keys: str, install: str = INSTALL):
    """Yields (book, chapter, verse, text) from `diatheke -f OSIS` (`install`: the packages to
    name when diatheke is missing)."""
    if shutil.which('diatheke') is None:
        raise FileNotFoundError(f'diatheke (SWORD) is not installed; run `{install}` (or `make system-deps`)')
    out = subprocess.run(
        ['diatheke', '-b', module, '-f', 'OSIS', '-k', keys], capture_output=True, text=True, check=True
    ).stdout
    out = out[: out.rfind('(')] if out.rstrip().endswith(')') else out  # trailing "(module)"
    found = list(VERSE.finditer(out))
    for m, nxt in zip(found, found[1:] + [None]):
        text = osis_to_text(out[m.end() : nxt.start() if nxt else len(out)])  # up to the next key line
        yield m.group(1), int(m.group(2)), int(m.group(3)), text


def chapters(module: str, keys: str):
    """Yields (book, chapter, text): the non-empty verses of each chapter joined."""
    for (book, chapter), group in itertools.groupby(verses(module, keys), key=lambda v: v[:2]):
        yield book, chapter, ' '.join(text for *_, text in group if text)


class Bible(tfds.core.GeneratorBasedBuilder):
    """WEB + KJV + Treasury of David chapters for language-model pretraining."""

    VERSION = tfds.core.Version('2.0.0')
    RELEASE_NOTES = {
        '1.0.0': 'WEB, KJV, TDavid chapters from diatheke OSIS; splits by book.',
        '2.0.0': 'Splits: every tenth book in canonical order held out (was: sha256 of the name).',
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    'text': tfds.features.Text(),
                    'work': tfds.features.Text(),
                    'book': tfds.features.Text(),
                    'id': tfds.features.Text(),
                }
            ),
            homepage='https://crosswire.org/sword/',
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded: diatheke reads the installed SWORD modules
        docs = [
            (work, book, chapter, text)
            for work, (module, keys) in WORKS.items()
            for book, chapter, text in chapters(module, keys)
        ]
        return {split: self._generate_examples(docs, split) for split in ('train', 'validation', 'test')}

    def _generate_examples(self, docs, split):
        for work, book, chapter, text in docs:
            if split_of(book) == split:
                key = f'{work}/{book}/{chapter}'
                yield key, {'text': text, 'work': work, 'book': book, 'id': key}
