"""The `bible` TFDS builder (diatheke OSIS export): chapters, works, book-level splits."""

import shutil

import pytest

from research.data import bible, sources

needs_sword = pytest.mark.skipif(
    shutil.which('diatheke') is None, reason=f'SWORD not installed: {bible.INSTALL} (make system-deps)'
)


def test_every_tenth_book_is_held_out_alternately_for_validation_and_test():
    held = {split: [b for b in bible.BOOKS if bible.split_of(b) == split] for split in ('validation', 'test')}
    assert held == dict(validation=['II Samuel', 'Amos', 'Philippians'], test=['Proverbs', 'Matthew', 'I Peter'])
    assert len(set(bible.BOOKS)) == 66 and bible.split_of('Psalms') == 'train'  # with it the Treasury of David
    assert bible.split_of('Tobit') == 'train'  # WEB's deuterocanon
    with pytest.raises(ValueError, match="unknown Bible book 'Psalm'"):
        bible.split_of('Psalm')


def test_osis_to_text_separates_adjacent_words_and_drops_notes():
    frag = '<w>God</w><w>created</w> the <note type="x">a note</note><w>heavens</w> &amp; earth.<milestone/>'
    assert bible.osis_to_text(frag) == 'God created the heavens & earth.'


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp('bible'))
    sources.prepare(lambda: bible.Bible(data_dir=data_dir))
    return {
        split: [{k: v.decode() for k, v in ex.items()} for ex in sources.load_split('bible', split, data_dir)]
        for split in ('train', 'validation', 'test')
    }


@needs_sword
def test_chapters_works_and_splits(prepared):
    docs = [d for split in prepared.values() for d in split]
    kjv = [d for d in docs if d['work'] == 'KJV']
    assert len({d['book'] for d in kjv}) == 66 and len(kjv) == 1189
    assert sum(d['work'] == 'TDavid' for d in docs) == 150
    words = sum(len(d['text'].split()) for d in docs)
    assert 3_500_000 < words < 4_200_000, words
    books = {split: {d['book'] for d in ds} for split, ds in prepared.items()}
    assert not books['train'] & books['validation'] and not books['train'] & books['test']
    assert books['validation'] and books['test']
    genesis = next(d['text'] for d in docs if d['id'] == 'WEB/Genesis/1')
    assert genesis.startswith('In the beginning, God created the heavens and the earth.')
    assert {d['book'] for d in prepared['test']} == {'Proverbs', 'Matthew', 'I Peter'}
