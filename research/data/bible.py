"""Local TFDS builder `bible`: World English Bible, King James Version and Spurgeon's
Treasury of David, exported offline with `diatheke` (SWORD), one document per chapter.

System packages (Debian): `apt-get install -y --no-install-recommends diatheke
sword-text-web sword-text-kjv sword-comm-tdavid` (`make system-deps`). Text is exported as
OSIS, not plain: plain output glues adjacent words ("Godcreated"); from OSIS, word
elements are separated, notes dropped, tags stripped, entities unescaped.

Features: `text` (a chapter), `work` ('WEB', 'KJV', 'TDavid'), `book`, `id`
("WEB/Genesis/1"). Splits are by book (sha256 of the book name: ~90/5/5), shared by all
works — the two Bibles share verses, so a book is never in two splits, and the Treasury
of David (a commentary on Psalms) goes wherever Psalms goes.
"""

import hashlib
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


def split_of(book: str) -> str:
    """'train' / 'validation' / 'test' for a book name (stable across works and runs)."""
    bucket = int.from_bytes(hashlib.sha256(book.encode()).digest()[:8], 'big') % 20
    return 'train' if bucket < 18 else ('validation' if bucket == 18 else 'test')


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

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'WEB, KJV, TDavid chapters from diatheke OSIS; splits by book.'}

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
