"""Language-model input pipeline: TFDS documents -> word ids -> packed sequences -> batches.

Documents are decoded (invalid UTF-8 replaced and counted, empty ones skipped and
counted), tokenized into words, ended with <eos> (the document separator) and packed into
windows of seq_len + 1 tokens that overlap by one, so every token is a target once:
inputs = window[:-1], targets = window[1:], weights = targets != <pad>.

Training runs on grain. Row r of every global batch (B rows) is a stream of its own: the
documents at positions r, r + B, r + 2B, ... of the epoch's order (grain's global index
shuffle of the ArrayRecord source, reseeded each epoch from data.seed), after an <eos>,
packed into consecutive windows; a row that has used its documents of epoch e goes on with
its documents of epoch e + 1. Hence:
- a host reads and tokenizes only the documents of its own rows (1/P of the corpus);
- the data of global step t does not depend on how rows are split over hosts, devices or
  worker processes (config.data.workers: grain's mp_prefetch, each worker every W-th row);
- the position is one cursor per row, (epoch, document of the row's epoch, next token):
  checkpointed with the data counts, it resumes by reading one document per row, on any
  number of hosts.
"""

import collections
import itertools
import operator
from collections.abc import Iterator

import grain
import jax
import numpy as np
from absl import flags
from jax.experimental import multihost_utils

from research.data import sources
from research.text import vocab as vocab_lib
from research.text.words import WordTokenizer

LONG_DOC_WINDOWS = 16  # documents spanning more windows than this are counted as 'long'
COUNTS = ('docs', 'empty', 'non_utf8', 'long', 'tokens')  # the training data counts, checkpointed


def encode_document(raw, tokenizer: WordTokenizer, vocab, seq_len: int, stats: collections.Counter) -> list | None:
    """Raw bytes -> word ids + <eos>, or None for an empty document; counts as `COUNTS` say."""
    text = sources.decode_text(raw, stats)
    if text is None:
        return None
    ids = vocab.encode(tokenizer.tokenize(text))
    ids.append(vocab_lib.EOS_ID)
    stats['tokens'] += len(ids)
    stats['long'] += len(ids) > LONG_DOC_WINDOWS * seq_len
    return ids


def encode_documents(raw_texts, tokenizer: WordTokenizer, vocab, seq_len: int, stats: collections.Counter):
    """The non-empty documents of `raw_texts` as word ids + <eos>, counted."""
    for raw in raw_texts:
        ids = encode_document(raw, tokenizer, vocab, seq_len, stats)
        if ids is not None:
            yield ids


def pack(docs, seq_len: int, keep_remainder: bool = False) -> Iterator[np.ndarray]:
    """Concatenates documents into [seq_len + 1] windows overlapping by one token.

    With keep_remainder the last partial window is padded with <pad> (weight 0), so an
    evaluation sees every token; training drops it. Linear in the total length.
    """
    buf = np.zeros(0, np.int32)
    for ids in docs:
        buf = np.concatenate([buf, np.asarray(ids, np.int32)])
        n = (len(buf) - 1) // seq_len  # full windows available
        for i in range(n):
            yield buf[i * seq_len : i * seq_len + seq_len + 1]
        buf = buf[n * seq_len :]
    if keep_remainder and len(buf) > 1:
        yield np.concatenate([buf, np.full(seq_len + 1 - len(buf), vocab_lib.PAD_ID, np.int32)])


def to_batch(windows: np.ndarray) -> dict:
    """[N, L+1] windows -> inputs/targets [N, L] int32 and weights [N, L] float32."""
    targets = windows[:, 1:]
    return dict(inputs=windows[:, :-1], targets=targets, weights=(targets != vocab_lib.PAD_ID).astype(np.float32))


class RowStreams(grain.IterDataset):
    """Packed training windows of some rows of the global batch (see the module docstring).

    Yields {'rows' [R], 'windows' [R, seq_len + 1], 'cursors' [R, 3] (each row's position after
    its window), 'counts' [len(COUNTS)] (documents read for these windows)}."""

    def __init__(self, texts: grain.MapDataset, num_docs: int, encode, batch_size: int, seq_len: int, cursors: dict):
        super().__init__()
        if num_docs < batch_size:
            raise ValueError(
                f'the training split has {num_docs} documents, fewer than the global batch ({batch_size} rows, '
                f'each reading its own documents); lower batch_size'
            )
        self.texts, self.num_docs, self.encode = texts, num_docs, encode
        self.batch_size, self.seq_len = batch_size, seq_len
        self.cursors = dict(cursors)  # global row -> (epoch, document in the row's epoch, next token)

    def set_slice(self, sl: slice, sequential_slice: bool = False):
        """grain's mp_prefetch: worker i of W takes rows[i::W]."""
        del sequential_slice
        self.cursors = {r: self.cursors[r] for r in sorted(self.cursors)[sl]}

    def __iter__(self):
        return _RowStreamsIterator(self)


class _RowStreamsIterator(grain.DatasetIterator):
    def __init__(self, ds: RowStreams):
        super().__init__()
        self.ds = ds
        self.cursors = dict(ds.cursors)
        self._last = {}  # row -> ((epoch, document), ids): a long document is tokenized once

    def _ids(self, row: int, epoch: int, doc: int, stats) -> list | None:
        if self._last.get(row, (None,))[0] != (epoch, doc):
            position = row + doc * self.ds.batch_size  # in the epoch's shuffled order
            raw = self.ds.texts[epoch * self.ds.num_docs + position]
            self._last[row] = ((epoch, doc), self.ds.encode(raw, stats))
        return self._last[row][1]

    def _window(self, row: int, cursor, stats) -> tuple[np.ndarray, tuple]:
        """The window starting before `cursor` (its previous token: <eos> at a document start)."""
        epoch, doc, offset = cursor
        per_epoch = -(-(self.ds.num_docs - row) // self.ds.batch_size)  # documents of this row per epoch
        # A document is counted when its first token is read; re-reading it here after a resume is not.
        window = [self._ids(row, epoch, doc, collections.Counter())[offset - 1] if offset else vocab_lib.EOS_ID]
        empty = 0
        while len(window) <= self.ds.seq_len:
            ids = self._ids(row, epoch, doc, stats)
            take = (ids or [])[offset : offset + self.ds.seq_len + 1 - len(window)]
            window += take
            offset += len(take)
            empty = 0 if take else empty + 1
            if empty > 2 * per_epoch:
                raise ValueError(f'the training split has no tokens for row {row} in two epochs ({dict(stats)})')
            if ids is None or offset == len(ids):
                epoch, doc, offset = (epoch, doc + 1, 0) if doc + 1 < per_epoch else (epoch + 1, 0, 0)
        return np.asarray(window, np.int32), (epoch, doc, offset)

    def __next__(self) -> dict:
        stats = collections.Counter()
        rows = sorted(self.cursors)
        windows = []
        for row in rows:
            window, self.cursors[row] = self._window(row, self.cursors[row], stats)
            windows.append(window)
        return dict(
            rows=np.asarray(rows, np.int32),
            windows=np.stack(windows) if windows else np.zeros((0, self.ds.seq_len + 1), np.int32),
            cursors=np.asarray([self.cursors[r] for r in rows], np.int64).reshape(-1, 3),
            counts=np.asarray([stats[k] for k in COUNTS], np.int64),
        )

    def get_state(self) -> dict:
        return {'cursors': {str(r): list(c) for r, c in self.cursors.items()}}

    def set_state(self, state: dict):
        self.cursors = {int(r): tuple(c) for r, c in state['cursors'].items()}
        self._last = {}


class TrainIterator:
    """Endless iterator of this host's `rows` of each global training batch: `RowStreams`, in
    `workers` processes (0: this one).

    `state` is the checkpointed position {'step', 'rows': [epoch, document, token] per global
    row, 'counts'}; `stats` are the data counts of all hosts. Both gather every host's rows:
    read them at the same step on every process.
    """

    def __init__(self, streams: RowStreams, rows: slice, workers: int, step: int = 0, counts: dict | None = None):
        self.rows = range(streams.batch_size)[rows]
        self.seq_len, self.step = streams.seq_len, step
        self.cursors = {r: streams.cursors[r] for r in self.rows}
        self.counts = collections.Counter(counts or {})
        streams.cursors = dict(self.cursors)
        self.workers = min(workers, len(self.rows))
        if self.workers and not flags.FLAGS.is_parsed():  # grain's workers read absl flags (their defaults here)
            flags.FLAGS.mark_as_parsed()
        options = grain.MultiprocessingOptions(num_workers=self.workers, per_worker_buffer_size=2)
        self._it = iter(streams.mp_prefetch(options) if self.workers else streams)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        windows = np.zeros((len(self.rows), self.seq_len + 1), np.int32)
        for part in itertools.islice(self._it, max(self.workers, 1)):  # one part per worker, in turn
            windows[part['rows'] - self.rows.start] = part['windows']
            self.cursors.update(zip(part['rows'].tolist(), map(tuple, part['cursors'].tolist())))
            self.counts.update(dict(zip(COUNTS, part['counts'].tolist())))
        self.step += 1
        return to_batch(windows)

    def _gathered(self) -> tuple[np.ndarray, np.ndarray]:
        """(cursors [B, 3] of every global row, counts summed over hosts)."""
        cursors = np.asarray([self.cursors[r] for r in self.rows], np.int64)
        counts = np.asarray([self.counts[k] for k in COUNTS], np.int64)
        if jax.process_count() > 1:  # hosts hold contiguous row blocks in process order
            cursors = multihost_utils.process_allgather(cursors).reshape(-1, 3)
            counts = multihost_utils.process_allgather(counts).sum(0)
        return cursors, counts

    @property
    def state(self) -> dict:
        cursors, counts = self._gathered()
        return {'step': self.step, 'rows': cursors.tolist(), 'counts': dict(zip(COUNTS, counts.tolist()))}

    @property
    def stats(self) -> dict:
        return dict(zip(COUNTS, self._gathered()[1].tolist()))


def train_iterator(config, vocab, rows: slice, state: dict | None = None) -> TrainIterator:
    """The training iterator of config.data, at the checkpointed `state` (None: the start)."""
    d, size = config.data, config.batch_size
    sources.check_keys(d.name, d.data_dir or None, text_key=d.text_key)
    source = sources.load_split(d.name, d.train_split, d.data_dir or None)
    texts = grain.MapDataset.source(source).shuffle(seed=d.seed % 2**32).map(operator.itemgetter(d.text_key))
    cursors = {r: (0, 0, 0) for r in range(size)}
    if state:
        if 'rows' not in state or len(state['rows']) != size:
            raise ValueError(
                f"the checkpoint's data position ({len(state.get('rows', []))} rows) does not fit config.batch_size="
                f'{size}: each row of the global batch reads its own documents; resume with the batch size it was '
                f'saved with (a position from before the grain pipeline cannot be resumed: start a new workdir)'
            )
        cursors = {r: tuple(c) for r, c in enumerate(state['rows'])}
    tokenizer = WordTokenizer(lowercase=d.lowercase, normalize_numbers=d.normalize_numbers)
    encode = _Encoder(tokenizer, vocab, d.seq_len)
    streams = RowStreams(texts, len(source), encode, size, d.seq_len, cursors)
    state = state or {}
    return TrainIterator(streams, rows, d.workers, state.get('step', 0), state.get('counts'))


class _Encoder:
    """`encode_document` with its settings bound: picklable for grain's worker processes."""

    def __init__(self, tokenizer, vocab, seq_len: int):
        self.tokenizer, self.vocab, self.seq_len = tokenizer, vocab, seq_len

    def __call__(self, raw, stats) -> list | None:
        return encode_document(raw, self.tokenizer, self.vocab, self.seq_len, stats)


def raw_texts(config, split: str) -> Iterator[bytes]:
    """The split's stored texts (bytes), in stored order."""
    d = config.data
    sources.check_keys(d.name, d.data_dir or None, text_key=d.text_key)
    return (ex[d.text_key] for ex in sources.load_split(d.name, split, d.data_dir or None))


def eval_windows(config, vocab, split: str) -> tuple[np.ndarray, collections.Counter]:
    """All evaluation windows [N, L+1] of `split` in stored order (the last one padded),
    at most data.max_eval_sequences of them, and the data counts."""
    d = config.data
    stats = collections.Counter()
    tokenizer = WordTokenizer(lowercase=d.lowercase, normalize_numbers=d.normalize_numbers)
    docs = encode_documents(raw_texts(config, split), tokenizer, vocab, d.seq_len, stats)
    windows = pack(docs, d.seq_len, keep_remainder=True)
    if d.max_eval_sequences:
        windows = itertools.islice(windows, d.max_eval_sequences)
    windows = list(windows)
    if not windows:
        raise ValueError(f'eval split {split!r} of {d.name!r} has no tokens ({dict(stats)}); choose another split')
    return np.stack(windows), stats


def unigram_perplexity(config, vocab, windows: np.ndarray) -> float:
    """Perplexity on `windows` of an add-one unigram model fitted on the train split's tokens."""
    d = config.data
    counts = np.zeros(len(vocab), np.float64)
    tokenizer = WordTokenizer(lowercase=d.lowercase, normalize_numbers=d.normalize_numbers)
    for ids in encode_documents(raw_texts(config, d.train_split), tokenizer, vocab, d.seq_len, collections.Counter()):
        counts += np.bincount(ids, minlength=len(vocab))
    counts[vocab_lib.PAD_ID] = 0
    logp = np.log((counts + 1) / (counts.sum() + len(vocab)))
    targets = windows[:, 1:]
    keep = targets != vocab_lib.PAD_ID
    return float(np.exp(-logp[targets[keep]].mean()))
