"""Language-model input pipeline: TFDS documents -> word ids -> packed sequences -> batches.

Documents are decoded (invalid UTF-8 replaced and counted, empty ones skipped and
counted), tokenized into words, ended with <eos> (the document separator) and packed into
windows of seq_len + 1 tokens that overlap by one, so every token is a target once:
inputs = window[:-1], targets = window[1:], weights = targets != <pad>.

Training reads the train split once per epoch, documents shuffled with a seed derived
from (data.seed, epoch). Every host reads the same stream and keeps its rows of each global
batch, so the iterator position (epoch, batches read in that epoch) is the same on every
host; it is saved with each checkpoint and a resumed run continues with the very next
batch.
"""

import collections
import itertools
from collections.abc import Callable, Iterator

import numpy as np

from research.data import sources
from research.text import vocab as vocab_lib
from research.text.words import WordTokenizer

LONG_DOC_WINDOWS = 16  # documents spanning more windows than this are counted as 'long'


def encode_documents(
    raw_texts, tokenizer: WordTokenizer, vocab, seq_len: int, stats: collections.Counter
) -> Iterator[list]:
    """Raw bytes -> word ids + <eos>, counting empty, non-UTF-8 and long documents."""
    for raw in raw_texts:
        text = sources.decode_text(raw, stats)
        if text is None:
            continue
        ids = vocab.encode(tokenizer.tokenize(text))
        ids.append(vocab_lib.EOS_ID)
        stats['tokens'] += len(ids)
        stats['long'] += len(ids) > LONG_DOC_WINDOWS * seq_len
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


def shuffle_windows(windows, buffer_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """A seeded shuffle buffer, so a batch mixes windows from many documents."""
    buf = []
    for w in windows:
        if len(buf) < buffer_size:
            buf.append(w)
            continue
        i = rng.integers(buffer_size)
        yield buf[i]
        buf[i] = w
    rng.shuffle(buf)
    yield from buf


def to_batch(windows: np.ndarray) -> dict:
    """[N, L+1] windows -> inputs/targets [N, L] int32 and weights [N, L] float32."""
    targets = windows[:, 1:]
    return dict(inputs=windows[:, :-1], targets=targets, weights=(targets != vocab_lib.PAD_ID).astype(np.float32))


class TrainIterator:
    """Endless iterator of this host's rows of each global training batch.

    `state` = {'epoch': e, 'batch': b} means the next batch is batch b of epoch e; it is
    what gets checkpointed. Resuming re-reads epoch e and skips b global batches.
    """

    def __init__(
        self,
        windows_for_epoch: Callable[[int], Iterator[np.ndarray]],
        global_batch_size: int,
        rows: slice,
        state: dict | None = None,
        stats: collections.Counter | None = None,
    ):
        self._windows_for_epoch = windows_for_epoch
        self._global_batch_size = global_batch_size
        self._rows = rows
        self.state = dict(state or {'epoch': 0, 'batch': 0})
        self.stats = collections.Counter() if stats is None else stats
        self._it = None

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        while True:
            if self._it is None:
                skip = self.state['batch'] * self._global_batch_size
                self._it = itertools.islice(self._windows_for_epoch(self.state['epoch']), skip, None)
            windows = list(itertools.islice(self._it, self._global_batch_size))
            if len(windows) == self._global_batch_size:
                self.state['batch'] += 1
                return to_batch(np.stack(windows)[self._rows])
            if self.state['batch'] == 0:
                raise ValueError(
                    f'the training split yields {len(windows)} sequences, fewer than one '
                    f'global batch ({self._global_batch_size}); lower batch_size or seq_len'
                )
            self.state = {'epoch': self.state['epoch'] + 1, 'batch': 0}
            self._it = None


def check_text_feature(config, split: str):
    """Fails now (not mid-run) if the split is not prepared or lacks config.data.text_key."""
    d = config.data
    spec = sources.load_split(d.name, split, d.data_dir or None).element_spec
    if d.text_key not in spec:
        raise KeyError(f'config.data.text_key={d.text_key!r} is not a feature of {d.name!r}; features: {sorted(spec)}')


def raw_texts(config, split: str, shuffle_seed: int | None = None):
    """The split's stored texts (bytes), optionally shuffled with a seed."""
    d = config.data
    ds = sources.load_split(d.name, split, d.data_dir or None)
    if shuffle_seed is not None:
        ds = ds.shuffle(d.shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
    return (ex[d.text_key] for ex in ds.as_numpy_iterator())


def train_windows(config, vocab, epoch: int, stats: collections.Counter) -> Iterator[np.ndarray]:
    """Epoch `epoch` of the training windows: documents and windows shuffled with data.seed."""
    d = config.data
    doc_seed, window_seed = np.random.SeedSequence([d.seed, epoch]).generate_state(2)
    tokenizer = WordTokenizer(lowercase=d.lowercase, normalize_numbers=d.normalize_numbers)
    docs = encode_documents(raw_texts(config, d.train_split, int(doc_seed)), tokenizer, vocab, d.seq_len, stats)
    return shuffle_windows(pack(docs, d.seq_len), d.window_shuffle_buffer, np.random.default_rng(window_seed))


def train_iterator(config, vocab, rows: slice, state: dict | None = None) -> TrainIterator:
    check_text_feature(config, config.data.train_split)
    stats = collections.Counter()
    return TrainIterator(
        lambda epoch: train_windows(config, vocab, epoch, stats), config.batch_size, rows, state, stats
    )


def eval_windows(config, vocab, split: str) -> tuple[np.ndarray, collections.Counter]:
    """All evaluation windows [N, L+1] of `split` in stored order (the last one padded),
    at most data.max_eval_sequences of them, and the data counts."""
    d = config.data
    check_text_feature(config, split)
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
    """Perplexity on `windows` of an add-one unigram model fitted on one train epoch."""
    counts = np.zeros(len(vocab), np.float64)
    for w in train_windows(config, vocab, 0, collections.Counter()):
        counts += np.bincount(w[1:], minlength=len(vocab))
    counts[vocab_lib.PAD_ID] = 0
    logp = np.log((counts + 1) / (counts.sum() + len(vocab)))
    targets = windows[:, 1:]
    keep = targets != vocab_lib.PAD_ID
    return float(np.exp(-logp[targets[keep]].mean()))
