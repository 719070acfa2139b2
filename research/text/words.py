"""Word-level tokenizer: unicode-aware regex splitting into words, numbers and symbols.

Token classes, tried in this order at every position of the normalised text:

* word:   a letter followed by letters/combining marks, with internal apostrophes
          (' or ’) between letters: "don't", "o'neill", "l’homme", "naïve".
          Hyphens are NOT part of words: "well-known" -> "well", "-", "known"
          (keeps the vocabulary small; detokenize restores "well - known").
          Digits are not letters: "1990s" -> "1990", "s"; "mp3" -> "mp", "3".
* number: decimal digits with internal "." or "," separators: "3.5", "1,000",
          "76%" -> "76", "%".
* other:  any other single visible character (punctuation, symbols, currency, emoji,
          CJK ideographs, ...) plus any combining marks that follow it, so "❤️"
          (heart + variation selector) is one token. CJK ideographs are never part
          of words: each is its own token.

Whitespace (anything `str.isspace`), control characters and the invisible
U+200B / U+2060 / U+FEFF are dropped. Lone surrogates become U+FFFD, so every token
is encodable as UTF-8. Letters and marks follow the unicode database of the running
Python (`unicodedata.unidata_version`).
"""

import dataclasses
import functools
import re
import unicodedata

# Detokenize: no space before these, none after OPENERS or a currency symbol.
CLOSERS = frozenset(('.', ',', ';', ':', '!', '?', '%', ')', ']', '}', "'", '’'))
OPENERS = frozenset(('(', '[', '{'))

# CJK ideograph blocks (as in BERT's basic tokenizer, plus extensions G/H).
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2CEAF),
    (0x2CEB0, 0x2EBEF),
    (0x2F800, 0x2FA1F),
    (0x30000, 0x323AF),
)
_IGNORED_EXTRA = (0x200B, 0x2060, 0xFEFF)
_SURROGATES_RE = re.compile('[\ud800-\udfff]')
_DIGIT_RE = re.compile(r'\d')


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _char_class(codepoints: list[int]) -> str:
    """Returns the body of a regex character class matching exactly `codepoints`."""
    parts = []
    start = prev = None
    for cp in codepoints + [-2]:
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            lo, hi = re.escape(chr(start)), re.escape(chr(prev))
            parts.append(lo if start == prev else f'{lo}-{hi}')
        start = prev = cp
    return ''.join(parts)


@functools.cache
def _token_regex() -> re.Pattern:
    """Builds (once per process, ~0.2 s) the token regex from the unicode database."""
    letters, marks, ignored = [], [], list(_IGNORED_EXTRA)
    for cp in range(0x110000):
        cat = unicodedata.category(chr(cp))
        if cat[0] == 'L' and not _is_cjk(cp):
            letters.append(cp)
        elif cat[0] == 'M':
            marks.append(cp)
        elif cat == 'Cc':
            ignored.append(cp)
    letter, mark = _char_class(letters), _char_class(marks)
    word = f"[{letter}][{letter}{mark}]*(?:['’][{letter}][{letter}{mark}]*)*"
    number = r'\d+(?:[.,]\d+)*'
    other = rf'[^\s{_char_class(sorted(ignored))}][{mark}]*'
    return re.compile(f'{word}|{number}|{other}')


def _starts_with_mark(token: str) -> bool:
    return unicodedata.category(token[0])[0] == 'M'


def _is_currency(token: str) -> bool:
    return len(token) == 1 and unicodedata.category(token) == 'Sc'


def _is_cjk_char(token: str) -> bool:
    return len(token) == 1 and _is_cjk(ord(token))


@dataclasses.dataclass(frozen=True)
class WordTokenizer:
    """Splits text into word, number and symbol tokens (see the module docstring).

    Attributes:
        lowercase: lowercase the text (str.lower) after NFC normalisation.
        normalize_numbers: replace every decimal digit by '0' ("3.5" -> "0.0") to
            shrink vocabularies.
    """

    lowercase: bool = True
    normalize_numbers: bool = False

    def normalize(self, text: str) -> str:
        """Returns `text` as tokenize sees it: NFC, optionally lowercased and digit-folded."""
        text = _SURROGATES_RE.sub('\ufffd', text)
        text = unicodedata.normalize('NFC', text)
        if self.lowercase:
            # Lowercasing can un-normalise ('İ' -> 'i' + U+0307), so normalise again.
            text = unicodedata.normalize('NFC', text.lower())
        if self.normalize_numbers:
            text = _DIGIT_RE.sub('0', text)
        return text

    def tokenize(self, text: str) -> list[str]:
        """Returns the tokens of `text`; never raises for a str, '' gives []."""
        return _token_regex().findall(self.normalize(text))

    def detokenize(self, tokens: list[str]) -> str:
        """Joins tokens into readable text that tokenizes back to the same tokens.

        Tokens are joined with single spaces, except: no space before CLOSERS
        (".,;:!?%)]}'’"), after OPENERS ("([{") or after a currency symbol ("£3"), and
        between two CJK ideographs. A token starting with a combining mark always gets
        a space, otherwise it would attach to the previous token.
        """
        pieces = []
        prev = None
        for tok in tokens:
            if not tok:
                continue
            if prev is not None and not _needs_no_space(prev, tok):
                pieces.append(' ')
            pieces.append(tok)
            prev = tok
        return ''.join(pieces)


def _needs_no_space(prev: str, tok: str) -> bool:
    """Whether `tok` can be glued to `prev` without changing the tokenization."""
    if _starts_with_mark(tok):
        return False
    if tok in CLOSERS or prev in OPENERS or _is_currency(prev):
        return True
    return _is_cjk_char(prev) and _is_cjk_char(tok)
