"""Tests for research.text: the word tokenizer and the vocabulary."""

import collections
import random

import pytest

from research.text import vocab as vocab_lib
from research.text.vocab import Vocab
from research.text.words import WordTokenizer

TOKENIZERS = (WordTokenizer(), WordTokenizer(lowercase=False), WordTokenizer(normalize_numbers=True))


# --- tokenizer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    'text, tokens',
    [
        ("Hello, World! Don't stop.", ['hello', ',', 'world', '!', "don't", 'stop', '.']),
        ('She said: "yes" (maybe)...', ['she', 'said', ':', '"', 'yes', '"', '(', 'maybe', ')', '.', '.', '.']),
        ("O'Neill met l’homme", ["o'neill", 'met', 'l’homme']),
        ("rock 'n' roll", ['rock', "'", 'n', "'", 'roll']),
        ('a well-known fact', ['a', 'well', '-', 'known', 'fact']),
        ('e-mail', ['e', '-', 'mail']),
        ('snake_case', ['snake', '_', 'case']),
    ],
)
def test_tokenize_english_and_punctuation(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


@pytest.mark.parametrize(
    'text, tokens',
    [
        ('3.5', ['3.5']),
        ('1,000,000', ['1,000,000']),
        ('76%', ['76', '%']),
        ('£15.8m', ['£', '15.8', 'm']),
        ('in 2004.', ['in', '2004', '.']),
        ('1990s', ['1990', 's']),
        ('mp3', ['mp', '3']),
        ('3.', ['3', '.']),
        ('-5', ['-', '5']),
        ('10:30', ['10', ':', '30']),
    ],
)
def test_tokenize_numbers(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


def test_normalize_numbers():
    tok = WordTokenizer(normalize_numbers=True)
    assert tok.tokenize('In 2024, 3.5m people (٣)') == ['in', '0000', ',', '0.0', 'm', 'people', '(', '0', ')']


@pytest.mark.parametrize(
    'text, tokens',
    [
        ('中文字符', ['中', '文', '字', '符']),
        ('東京 is big', ['東', '京', 'is', 'big']),
        ('emoji 😀❤️👍🏽', ['emoji', '😀', '❤️', '👍', '🏽']),  # ❤️ keeps its variation selector.
        ('naïve café', ['naïve', 'café']),
        ('cafe\u0301', ['café']),  # NFC composes e + combining acute.
        ('ΟΔΟΣ', ['οδος']),
        ('Straße', ['straße']),
        ('Привет, мир!', ['привет', ',', 'мир', '!']),
        ('مرحبا بالعالم', ['مرحبا', 'بالعالم']),
        ('हिन्दी', ['हिन्दी']),  # Devanagari vowel signs and virama are marks.
        ('$5 €3 ¥2', ['$', '5', '€', '3', '¥', '2']),
    ],
)
def test_tokenize_unicode(text, tokens):
    assert WordTokenizer().tokenize(text) == tokens


def test_lowercase_flag():
    assert WordTokenizer(lowercase=False).tokenize('The BBC') == ['The', 'BBC']
    assert WordTokenizer().tokenize('The BBC') == ['the', 'bbc']


@pytest.mark.parametrize('text', ['', ' ', '\t\n\r \u00a0\u3000\u2028', '\u200b\ufeff', '\x00\x07'])
def test_whitespace_and_invisible_dropped(text):
    assert WordTokenizer().tokenize(text) == []


def test_never_raises_and_tokens_are_utf8():
    tok = WordTokenizer()
    tokens = tok.tokenize('a\ud800b \udfff \U0010ffff \ue000 \x85')
    assert tokens == ['a', '\ufffd', 'b', '\ufffd', '\U0010ffff', '\ue000']
    for t in tokens:
        t.encode('utf-8')


@pytest.mark.parametrize(
    'tokens, text',
    [
        (['hello', ',', 'world', '!'], 'hello, world!'),
        (['it', 'costs', '£', '3.5', 'm', '(', '76', '%', ')', '.'], 'it costs £3.5 m (76%).'),
        (['a', '[', 'b', ']', '{', 'c', '}', ';', 'd', ':', 'e', '?'], 'a [b] {c}; d: e?'),
        (['中', '文', 'ok'], '中文 ok'),
        ([], ''),
    ],
)
def test_detokenize_readable(tokens, text):
    assert WordTokenizer().detokenize(tokens) == text


_POOL = list(
    "aZé'’-.,;:!?%()[]{}£$€ 0123456789\t\nİΣσςß中文😀\u0301\u0316\u0338=\u200d"
    '\ufe0f\u1100\u1161\u11a8\u09c7\u09be\u00a0_"'
)


def _random_strings(n: int, seed: int = 0) -> list[str]:
    """Strings mixing tricky characters with random code points (surrogates included)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(0, 16)
        out.append(
            ''.join(rng.choice(_POOL) if rng.random() < 0.7 else chr(rng.randrange(0x110000)) for _ in range(length))
        )
    return out


_FIXED = [
    "Don't panic: it's 3.5% (or £1,000)!",
    "l’homme d'O'Neill",
    'x.5 .5 5. 5,5,',
    "'a' ''b''",
    '(£)',
    '$(',
    '[[3]]',
    '3\u0301',
    '(\u0301',
    '£\u0301',
    'a\u0301\u0316',
    '=\u0338',
    'İİ',
    'ΣΑΣ.',
    '\u1100\u1161',
    '中。文',
    "it's' s",
    '❤️❤',
    '💁🏾\u200d♀️',
]


@pytest.mark.parametrize('tok', TOKENIZERS, ids=repr)
def test_detokenize_round_trip(tok):
    for s in _FIXED + _random_strings(3000):
        tokens = tok.tokenize(s)
        assert tok.tokenize(tok.detokenize(tokens)) == tokens, repr(s)


def test_tokenize_is_idempotent_on_tokens():
    tok = WordTokenizer()
    for s in _random_strings(500, seed=1):
        for t in tok.tokenize(s):
            assert tok.tokenize(t) == [t], repr(s)


# --- vocab ------------------------------------------------------------------------------


def test_special_ids():
    assert vocab_lib.SPECIALS == ('<pad>', '<unk>', '<bos>', '<eos>', '<mask>', '<cls>', '<sep>')
    ids = (
        vocab_lib.PAD_ID,
        vocab_lib.UNK_ID,
        vocab_lib.BOS_ID,
        vocab_lib.EOS_ID,
        vocab_lib.MASK_ID,
        vocab_lib.CLS_ID,
        vocab_lib.SEP_ID,
    )
    assert ids == tuple(range(7))


COUNTS = collections.Counter({'the': 10, 'b': 3, 'a': 3, 'c': 3, 'rare': 1, 'z': 2, '<unk>': 99, '<pad>': 5})


def test_build_order_and_determinism():
    v = Vocab.build(COUNTS)
    assert v.tokens == vocab_lib.SPECIALS + ('the', 'a', 'b', 'c', 'z', 'rare')
    shuffled = collections.Counter(dict(reversed(list(COUNTS.items()))))
    assert Vocab.build(shuffled) == v


def test_build_min_count_and_max_size():
    assert Vocab.build(COUNTS, min_count=3).tokens[7:] == ('the', 'a', 'b', 'c')
    v = Vocab.build(COUNTS, max_size=9)
    assert len(v) == 9 and v.tokens[7:] == ('the', 'a')
    assert len(Vocab.build(COUNTS, max_size=7)) == 7
    with pytest.raises(ValueError):
        Vocab.build(COUNTS, max_size=6)
    assert len(Vocab.build(collections.Counter())) == 7


def test_encode_decode():
    v = Vocab.build(COUNTS)
    ids = v.encode(['the', 'unseen', 'a', '<pad>', '<bos>'])
    assert ids == [7, vocab_lib.UNK_ID, 8, vocab_lib.PAD_ID, vocab_lib.BOS_ID]
    assert v.decode(ids) == ['the', '<unk>', 'a', '<pad>', '<bos>']
    tokens = ['the', 'a', 'c', 'z']
    assert v.decode(v.encode(tokens)) == tokens
    assert v.token_to_id('b') == 9 and v.id_to_token(9) == 'b'
    assert v.token_to_id('nope') == vocab_lib.UNK_ID
    for bad in (-1, len(v)):
        with pytest.raises(ValueError, match='out of range'):
            v.decode([0, bad])


def test_decode_numpy_ids():
    np = pytest.importorskip('numpy')
    v = Vocab.build(COUNTS)
    assert v.decode(np.array([7, 8], dtype=np.int32)) == ['the', 'a']


def test_constructor_validates():
    with pytest.raises(ValueError):
        Vocab(('a',) + vocab_lib.SPECIALS)
    with pytest.raises(ValueError, match='duplicate'):
        Vocab(vocab_lib.SPECIALS + ('a', 'a'))
    with pytest.raises(ValueError, match='empty'):
        Vocab(vocab_lib.SPECIALS + ('',))


def test_save_load_round_trip(tmp_path):
    v = Vocab.build(COUNTS | collections.Counter({'l’homme': 4, '中': 4, '❤️': 4, '\u2028x': 1}))
    path = tmp_path / 'sub' / 'dir' / 'vocab.txt'
    v.save(path)
    assert Vocab.load(path) == v
    assert Vocab.load(str(path)).tokens == v.tokens
    assert [p.name for p in path.parent.iterdir()] == ['vocab.txt']  # No temp file left.
    v.save(path)  # Overwrites.
    assert Vocab.load(path) == v


def _write(path, lines, end='\n'):
    path.write_bytes(end.join(lines).encode('utf-8') + end.encode())
    return path


@pytest.mark.parametrize(
    'lines, line, what',
    [
        (['<pad>', '<unk>', '<bos>', '<eos>', '<mask>', '<sep>', '<cls>'], 6, 'expected special'),
        (list(vocab_lib.SPECIALS) + ['a', 'b', 'a'], 10, 'duplicate'),
        (list(vocab_lib.SPECIALS) + ['a', '', 'b'], 9, 'empty'),
        (list(vocab_lib.SPECIALS[:3]), 4, 'ends before'),
    ],
)
def test_load_malformed(tmp_path, lines, line, what):
    path = _write(tmp_path / 'v.txt', lines)
    with pytest.raises(ValueError, match=what) as e:
        Vocab.load(path)
    assert f'{path}:{line}:' in str(e.value)


def test_load_invalid_utf8(tmp_path):
    path = tmp_path / 'v.txt'
    path.write_bytes('\n'.join(vocab_lib.SPECIALS).encode() + b'\nok\n\xff\n')
    with pytest.raises(ValueError, match=f'{path}:9: not valid UTF-8'):
        Vocab.load(path)


def test_load_tolerates_crlf(tmp_path):
    path = _write(tmp_path / 'v.txt', list(vocab_lib.SPECIALS) + ['a'], end='\r\n')
    assert Vocab.load(path).tokens[-1] == 'a'


def test_load_missing_file(tmp_path):
    path = tmp_path / 'nope' / 'vocab.txt'
    with pytest.raises(FileNotFoundError) as e:
        Vocab.load(path)
    assert str(path) in str(e.value)
    assert 'python -m research.tools.build_vocab' in str(e.value)
