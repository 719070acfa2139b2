"""Token vocabularies: fixed special tokens, deterministic building, a plain-text file format.

File format: UTF-8, one token per line ("\\n"-separated; a trailing "\\r" is tolerated),
the first len(SPECIALS) lines are SPECIALS in order, no empty lines, no duplicates.
Token ids are line numbers counted from 0.
"""

import collections
import os
import tempfile
from collections.abc import Iterable, Sequence

SPECIALS = ('<pad>', '<unk>', '<bos>', '<eos>', '<mask>', '<cls>', '<sep>')
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(len(SPECIALS))

_BUILD_HINT = 'build it with: python -m research.tools.build_vocab --dataset NAME --split train --out {path}'


class Vocab:
    """An immutable token <-> id mapping whose first ids are SPECIALS."""

    __slots__ = ('_tokens', '_ids')

    def __init__(self, tokens: Sequence[str]):
        """Creates a vocabulary; `tokens` must start with SPECIALS and be unique.

        Raises:
            ValueError: on a missing/misplaced special, a duplicate, an empty token or a
                token containing a line break (it could not be saved).
        """
        tokens = tuple(tokens)
        if tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f'Vocab must start with {SPECIALS}, got {tokens[: len(SPECIALS)]}')
        ids = {}
        for i, tok in enumerate(tokens):
            problem = _token_problem(tok, ids)
            if problem:
                raise ValueError(f'Vocab token {i} {tok!r}: {problem}')
            ids[tok] = i
        self._tokens = tokens
        self._ids = ids

    @classmethod
    def build(cls, counts: collections.Counter, min_count: int = 1, max_size: int | None = None) -> 'Vocab':
        """Builds a vocabulary from token counts.

        Args:
            counts: token -> count. Special tokens in it are ignored, and so are tokens
                that could not be saved (empty, containing a line break, lone surrogates).
            min_count: keep tokens seen at least this many times.
            max_size: at most this many entries in total, specials included.

        Returns:
            SPECIALS, then tokens by descending count, ties broken by token (str order),
            so the result does not depend on the order of `counts`.
        """
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f'max_size={max_size} is smaller than the {len(SPECIALS)} specials')
        specials = set(SPECIALS)
        kept = [
            (tok, c)
            for tok, c in counts.items()
            if c >= min_count and tok not in specials and not _token_problem(tok, {})
        ]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        tokens = SPECIALS + tuple(tok for tok, _ in kept)
        if max_size is not None:
            tokens = tokens[:max_size]
        return cls(tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> 'Vocab':
        """Reads a vocabulary file (see the module docstring for the format).

        Raises:
            FileNotFoundError: `path` does not exist (the message says how to build it).
            ValueError: malformed file; the message names the path and the line.
        """
        path = os.fspath(path)
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except FileNotFoundError as e:
            raise FileNotFoundError(f'Vocabulary file {path} not found; ' + _BUILD_HINT.format(path=path)) from e
        lines = data.split(b'\n')
        if lines and lines[-1] == b'':
            lines.pop()  # The final line break.
        tokens, ids = [], {}
        for lineno, raw in enumerate(lines, start=1):
            try:
                tok = raw.removesuffix(b'\r').decode('utf-8')
            except UnicodeDecodeError as e:
                raise ValueError(f'{path}:{lineno}: not valid UTF-8 ({e})') from e
            if lineno <= len(SPECIALS) and tok != SPECIALS[lineno - 1]:
                raise ValueError(f'{path}:{lineno}: expected special token {SPECIALS[lineno - 1]!r}, got {tok!r}')
            problem = _token_problem(tok, ids)
            if problem:
                raise ValueError(f'{path}:{lineno}: {problem}')
            ids[tok] = lineno - 1
            tokens.append(tok)
        if len(tokens) < len(SPECIALS):
            raise ValueError(f'{path}:{len(tokens) + 1}: file ends before the special tokens {SPECIALS} are complete')
        return cls(tokens)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the vocabulary atomically (temp file in the same dir + os.replace)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.vocab-', suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(''.join(tok + '\n' for tok in self._tokens).encode('utf-8'))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens, indexed by id."""
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        return f'Vocab(size={len(self)})'

    def token_to_id(self, token: str) -> int:
        """Returns the id of `token`, UNK_ID if it is not in the vocabulary."""
        return self._ids.get(token, UNK_ID)

    def id_to_token(self, i: int) -> str:
        """Returns the token with id `i`; raises ValueError if out of range."""
        i = int(i)
        if not 0 <= i < len(self._tokens):
            raise ValueError(f'Token id {i} out of range [0, {len(self._tokens)})')
        return self._tokens[i]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Maps tokens to ids; unknown tokens map to UNK_ID."""
        get = self._ids.get
        return [get(tok, UNK_ID) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Maps ids (ints or numpy integers) to tokens; raises ValueError if out of range."""
        return [self.id_to_token(i) for i in ids]


def _token_problem(tok: object, seen: dict) -> str | None:
    """Returns why `tok` cannot be a vocabulary entry, or None if it can."""
    if not isinstance(tok, str):
        return f'not a str ({type(tok).__name__})'
    if not tok:
        return 'empty token'
    if '\n' in tok or '\r' in tok:
        return 'token contains a line break'
    if tok in seen:
        return f'duplicate token {tok!r} (first at id {seen[tok]})'
    try:
        tok.encode('utf-8')
    except UnicodeEncodeError:
        return 'token is not encodable as UTF-8 (lone surrogate)'
    return None
