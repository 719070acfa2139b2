"""BERT WordPiece tokenizer giving the same ids as Hugging Face `tokenizers` on BERT vocabs.

Pipeline (as `BertNormalizer` + `BertPreTokenizer` + `WordPiece` in `tokenizers`):

1. SPECIALS written literally in the text (case-sensitive) are cut out first, kept whole.
2. Clean: drop NUL, U+FFFD and "other" characters (Cc, Cf, Co, surrogates) except tab,
   newline and CR; map every whitespace character to a space.
3. Put spaces around CJK ideographs (each becomes its own word).
4. If strip_accents (default: same as lowercase): NFD, then drop non-spacing marks (Mn).
5. If lowercase: lowercase each character on its own (so a final 'Σ' becomes 'σ', not 'ς').
6. Split on whitespace; isolate punctuation (ASCII 33-47, 58-64, 91-96, 123-126, or P*).
7. Per word: greedy longest-match-first pieces, continuations prefixed '##'; a word that
   cannot be covered, or longer than max_chars_per_word characters, is one [UNK].

`tokenizers` classifies control/mark/punctuation characters with Unicode 8.0 tables;
`_UNICODE8_EXCEPTIONS` lists where Python's unicodedata (13.0/14.0 in Python 3.10-3.12)
disagrees (tests/test_wordpiece.py checks every code point). Case mappings and NFD of
characters newer than Python's tables may still differ, but only outside the vocabulary.
"""

import bisect
import dataclasses
import functools
import os
import re
import types
import unicodedata

from research.text import align

SPECIALS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
_SPECIAL_RE = re.compile('(' + '|'.join(re.escape(s) for s in SPECIALS) + ')')
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
# Code point ranges (hex) whose class in `tokenizers` (Unicode 8.0) differs from Python's
# unicodedata 14.0: plain (mostly marks and punctuation added after 8.0), or as given.
_UNICODE8_EXCEPTIONS = tuple(
    (int(lo, 16), int(hi or lo, 16), cls)
    for lo, hi, cls in re.findall(
        r'(\w+)-?(\w*):?([a-z]*)',
        """
    61d 7fd 890-8e2 9fd-9fe a76 afa-aff b55 c04-c3c c77 c84 d00 d3b-d3c d81 eba 166d:punct
    1734:mark 180f 1885-1886 1abf-1ace 1b7d-1b7e 1df6-1dfb 2e43-2e5d a82c a8c5 a8ff a9bd
    10d24-10d27 10eab-10ead 10f46-10f89 11070-11074 110c2-110cd 111c9:punct 111cf 1123e
    1133b 11438-1145e 11660-1166c 116b9 1182f-1183b 1193b-11946 119d4-11aa2 11c30-11cb6
    11d31-11d47 11d90-11d97 11ef3-11ef8 11fff 12ff1-12ff2 13430-13438 16e97-16e9a 16f4f
    16fe2-16fe4 1cf00-1cf46 1e000-1e02a 1e130-1e136 1e2ae-1e2ef 1e944-1e95f""",
    )
)
_EXCEPTION_STARTS = tuple(lo for lo, _, _ in _UNICODE8_EXCEPTIONS)


@functools.lru_cache(maxsize=1 << 16)
def _char_class(c: str) -> str:
    """Returns 'control', 'mark' (Mn), 'punct', 'cjk' or '' for `c`, as in `tokenizers`."""
    cp = ord(c)
    if any(lo <= cp <= hi for lo, hi in _CJK_RANGES):
        return 'cjk'
    k = bisect.bisect_right(_EXCEPTION_STARTS, cp) - 1
    if k >= 0 and cp <= _UNICODE8_EXCEPTIONS[k][1]:
        return _UNICODE8_EXCEPTIONS[k][2]
    cat = unicodedata.category(c)
    if cat in ('Cc', 'Cf', 'Co', 'Cs') and c not in '\t\n\r' or c == '\ufffd':
        return 'control'
    if cat == 'Mn':
        return 'mark'
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat[0] == 'P':
        return 'punct'
    return ''


@dataclasses.dataclass(frozen=True)
class WordPiece:
    """An immutable WordPiece tokenizer over a BERT vocabulary (id = position in `tokens`).

    Attributes:
        tokens: the vocabulary; must contain SPECIALS, no duplicates, no empty tokens.
        lowercase: lowercase the text (BERT "uncased" vocabularies).
        strip_accents: NFD + drop non-spacing marks; None means "same as lowercase".
        max_chars_per_word: longer words become [UNK].
    """

    tokens: tuple[str, ...]
    lowercase: bool = True
    strip_accents: bool | None = None
    max_chars_per_word: int = 100
    _ids: types.MappingProxyType = dataclasses.field(init=False, repr=False, compare=False)
    _max_len: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, 'tokens', tuple(self.tokens))
        ids = {}
        for i, tok in enumerate(self.tokens):
            if not tok or tok in ids:
                raise ValueError(f'WordPiece token {i} {tok!r}: empty or duplicate')
            ids[tok] = i
        missing = [s for s in SPECIALS if s not in ids]
        if missing:
            raise ValueError(f'WordPiece vocabulary lacks special tokens {missing}')
        object.__setattr__(self, '_ids', types.MappingProxyType(ids))
        object.__setattr__(self, '_max_len', max(len(t) for t in self.tokens))

    @classmethod
    def load(
        cls,
        vocab_path: str | os.PathLike,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        max_chars_per_word: int = 100,
    ) -> 'WordPiece':
        """Reads a BERT `vocab.txt` (UTF-8, one token per line, id = line number - 1).

        Raises:
            FileNotFoundError: `vocab_path` does not exist (the message names it).
            ValueError: an empty or duplicate line (the message names path and line).
        """
        path = os.fspath(vocab_path)
        try:
            with open(path, encoding='utf-8', newline='') as f:
                lines = f.read().split('\n')
        except FileNotFoundError as e:
            raise FileNotFoundError(f'WordPiece vocabulary {path} not found') from e
        if lines[-1] == '':
            lines.pop()  # The final line break.
        seen = {}
        for lineno, line in enumerate(lines, start=1):
            tok = line.removesuffix('\r')
            if not tok:
                raise ValueError(f'{path}:{lineno}: empty line')
            if tok in seen:
                raise ValueError(f'{path}:{lineno}: duplicate token {tok!r} (first on line {seen[tok]})')
            seen[tok] = lineno
        return cls(tuple(seen), lowercase, strip_accents, max_chars_per_word)

    def __repr__(self) -> str:
        return (
            f'WordPiece(size={len(self)}, lowercase={self.lowercase}, strip_accents='
            f'{self.strip_accents}, max_chars_per_word={self.max_chars_per_word})'
        )

    def __len__(self) -> int:
        return len(self.tokens)

    pad_id = property(lambda self: self._ids['[PAD]'], doc='Id of [PAD].')
    unk_id = property(lambda self: self._ids['[UNK]'], doc='Id of [UNK].')
    cls_id = property(lambda self: self._ids['[CLS]'], doc='Id of [CLS].')
    sep_id = property(lambda self: self._ids['[SEP]'], doc='Id of [SEP].')
    mask_id = property(lambda self: self._ids['[MASK]'], doc='Id of [MASK].')

    def _normalize(self, text: str) -> str:
        """Steps 2-5 of the module docstring."""
        chars = []
        for c in text:
            cls = _char_class(c)
            if cls != 'control':
                chars.append(' ' if c.isspace() else f' {c} ' if cls == 'cjk' else c)
        text = ''.join(chars)
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip:
            text = ''.join(c for c in unicodedata.normalize('NFD', text) if _char_class(c) != 'mark')
        if self.lowercase:
            text = ''.join(c.lower() for c in text)
        return text

    def basic_tokenize(self, text: str) -> list[str]:
        """Returns the words of `text` (steps 1-6 of the module docstring); '' gives []."""
        words = []
        for i, segment in enumerate(_SPECIAL_RE.split(text)):
            if i % 2:  # A special token.
                words.append(segment)
                continue
            for chunk in self._normalize(segment).split():
                start = 0
                for j, c in enumerate(chunk):
                    if _char_class(c) == 'punct':
                        words.extend(w for w in (chunk[start:j], c) if w)
                        start = j + 1
                if start < len(chunk):
                    words.append(chunk[start:])
        return words

    def _pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first pieces of one word, or ['[UNK]']."""
        if len(word) > self.max_chars_per_word:
            return ['[UNK]']
        pieces, start = [], 0
        while start < len(word):
            prefix = '##' if start else ''
            for end in range(min(len(word), start + self._max_len), start, -1):
                piece = prefix + word[start:end]
                if piece in self._ids:
                    break
            else:
                return ['[UNK]']
            pieces.append(piece)
            start = end
        return pieces

    def words_to_pieces(self, words: list[str]) -> list[list[str]]:
        """Splits each (basic-tokenized) word into WordPiece tokens, greedy longest first."""
        return [self._pieces(w) for w in words]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Returns the token ids of `text`, wrapped in [CLS] ... [SEP] if add_special_tokens."""
        ids = [self._ids[p] for ps in self.words_to_pieces(self.basic_tokenize(text)) for p in ps]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def encode_words(self, words: list[str]) -> tuple[list[int], list[int]]:
        """Encodes pre-split words (no [CLS]/[SEP] added).

        Returns:
            (ids, word_index): word_index[k] is the index in `words` of the word that
            piece k came from; a word giving no pieces (e.g. only spaces) has none.
        """
        return align.encode_words(words, lambda word: self.encode(word, add_special_tokens=False))

    def decode(self, ids) -> str:
        """Joins the pieces of `ids` with spaces, merging '##' continuations; drops SPECIALS.

        Raises:
            ValueError: an id outside [0, len(self)).
        """
        words = []
        for i in map(int, ids):
            if not 0 <= i < len(self.tokens):
                raise ValueError(f'Token id {i} out of range [0, {len(self.tokens)})')
            tok = self.tokens[i]
            if tok in SPECIALS:
                continue
            if tok.startswith('##') and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        return ' '.join(words)
