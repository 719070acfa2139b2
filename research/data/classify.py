"""Classification input pipeline: TFDS (text, label) -> fixed-length ids -> batches.

Splits are small enough to hold in memory as id arrays, so the training order is a
seeded permutation per epoch and the checkpointed position {'epoch', 'batch'} resumes in
O(1). Labels are [N] (one per text) or [N, T] (one per token, IGNORE = -1 where there is
none; see research/data/tag.py). Training batches carry `weights` shaped like the labels
= the class weight of the label (1 unless class weighting is on; 0 where IGNORE), so the
trainer's weighted mean is exactly the class-weighted cross-entropy; evaluation batches
weigh every label 1 and pad the last batch with weight-0 rows.
"""

import collections

import numpy as np

from research.data import sources


def class_names(config) -> list:
    """The names of config.data.label_key's classes (a ClassLabel, or a sequence of them)."""
    d = config.data
    features = sources.features(d.name, d.data_dir or None)
    feature = features[d.label_key] if d.label_key in features else None
    feature = getattr(feature, 'feature', feature)  # a Sequence of per-word labels
    if not hasattr(feature, 'names'):
        raise ValueError(
            f'config.data.label_key={d.label_key!r} is not a class-label feature of '
            f'{d.name!r}; features: {sorted(features)}'
        )
    return list(feature.names)


def encode_split(config, split: str, stats: collections.Counter, *, encode, end_id=None) -> dict:
    """{'ids' [N, T] int32, 'mask' [N, T] bool, 'labels' [N] int32} for one split, in stored order.

    Texts longer than seq_len are cut (and counted); `end_id` (e.g. [SEP]) stays last.
    """
    d = config.data
    ids, labels = [], []
    for ex in sources.load_split(d.name, split, d.data_dir or None):
        text = sources.decode_text(ex[d.text_key], stats)
        if text is None:  # empty documents are counted and dropped
            continue
        piece_ids = encode(text)
        stats['truncated'] += len(piece_ids) > d.seq_len
        ids.append(cut(piece_ids, d.seq_len, end_id))
        labels.append(int(ex[d.label_key]))
    if not ids:
        raise ValueError(f'split {split!r} of {d.name!r} has no non-empty texts ({dict(stats)})')
    out = np.zeros((len(ids), d.seq_len), np.int32)  # 0 = <pad>/[PAD]
    for i, row in enumerate(ids):
        out[i, : len(row)] = row
    lengths = np.array([len(r) for r in ids])
    return dict(ids=out, mask=np.arange(d.seq_len)[None, :] < lengths[:, None], labels=np.array(labels, np.int32))


def cut(ids: list, seq_len: int, end_id: int | None = None) -> list:
    """The first seq_len ids; a kept `end_id` (e.g. [SEP]) stays last."""
    if len(ids) <= seq_len:
        return ids
    return ids[: seq_len - 1] + [end_id] if end_id is not None else ids[:seq_len]


def class_weights(config, counts: np.ndarray) -> np.ndarray:
    """Per-class loss weights: explicit, `balanced` (n / (C * n_c)), or all ones."""
    if config.loss.class_weights:
        weights = np.asarray(config.loss.class_weights, np.float32)
        if weights.shape != counts.shape:
            raise ValueError(f'config.loss.class_weights has {len(weights)} values for {len(counts)} classes')
        return weights
    if config.loss.balanced:
        return (counts.sum() / (len(counts) * np.maximum(counts, 1))).astype(np.float32)
    return np.ones(len(counts), np.float32)


def downsample(config, arrays: dict, class_names) -> dict:
    """Keeps a seeded fraction (data.seed) of the examples of the classes named in
    data.train_class_fraction, e.g. (('business', 0.1),)."""
    labels = arrays['labels'].reshape(len(arrays['labels']), -1)
    keep = np.ones(len(labels), bool)
    rng = np.random.default_rng([config.data.seed, 7])
    for name, fraction in config.data.train_class_fraction:
        if name not in class_names:
            raise ValueError(f'config.data.train_class_fraction names {name!r}; classes: {list(class_names)}')
        members = np.flatnonzero((labels == list(class_names).index(name)).any(1))
        drop = rng.permutation(members)[int(round(fraction * len(members))) :]
        keep[drop] = False
    return {k: v[keep] for k, v in arrays.items()}


def labelled_texts(config, split: str) -> tuple[list, np.ndarray]:
    """(texts, labels [N]) of a text-classification split in stored order, blank texts dropped
    (for evaluators that build prompts from the raw text)."""
    d = config.data
    features = sources.features(d.name, d.data_dir or None)
    for key in (d.text_key, d.label_key):
        if key not in features or features[key].shape != ():
            raise ValueError(
                f'{key!r} is not a scalar feature of {d.name!r} (config.data.text_key/'
                f'label_key); features: {sorted(features)}'
            )
    texts, labels, stats = [], [], collections.Counter()
    for ex in sources.load_split(d.name, split, d.data_dir or None):
        text = sources.decode_text(ex[d.text_key], stats)
        if text is not None:
            texts.append(text)
            labels.append(int(ex[d.label_key]))
    return texts, np.array(labels, np.int32)


class ExampleIterator:
    """Endless iterator of this host's rows of each global training batch of `arrays` (model
    inputs and 'labels'), with 'weights' = the class weight of each label (0 where IGNORE);
    with class_weights=None, `arrays` hold their own 'weights' (e.g. translation targets).

    Epoch e visits the examples in the permutation seeded by (seed, e) and drops the last
    incomplete batch; `state` = {'epoch', 'batch'} is the next batch, as checkpointed;
    `stats` are the counts of the encoded split. With `lengths` [N] (real positions per
    example), batches group similar lengths: each run of POOL batches of the permutation is
    sorted by length and cut into batches, all batches of the epoch are shuffled, and every
    2-D array of a batch is cut to the batch's longest length rounded up to `multiple` (a few
    shapes, each compiled once, and little padding).
    """

    POOL = 50

    def __init__(
        self,
        arrays: dict,
        class_weights,
        global_batch_size: int,
        rows: slice,
        seed: int,
        state: dict | None = None,
        stats: collections.Counter | None = None,
        lengths: np.ndarray | None = None,
        multiple: int = 16,
    ):
        self._arrays, self._class_weights = arrays, class_weights
        self._size, self._rows, self._seed = global_batch_size, rows, seed
        self._lengths, self._multiple, self._order = lengths, multiple, (None, None)
        self.stats = collections.Counter() if stats is None else stats
        n = len(next(iter(arrays.values())))
        if n < global_batch_size:
            raise ValueError(
                f'the training split has {n} examples, fewer than one '
                f'global batch ({global_batch_size}); lower batch_size'
            )
        self.state = dict(state or {'epoch': 0, 'batch': 0})

    def __iter__(self):
        return self

    def order(self, epoch: int) -> np.ndarray:
        """The examples of `epoch`'s batches, batch after batch (cached for the current epoch)."""
        if self._order[0] != epoch:
            n = len(next(iter(self._arrays.values())))
            order = np.random.default_rng([self._seed, epoch]).permutation(n)
            if self._lengths is not None:
                order = order[: n - n % self._size]
                pools = [order[i : i + self.POOL * self._size] for i in range(0, len(order), self.POOL * self._size)]
                batches = np.concatenate(
                    [p[np.argsort(self._lengths[p], kind='stable')].reshape(-1, self._size) for p in pools]
                )
                order = batches[np.random.default_rng([self._seed, epoch, 1]).permutation(len(batches))].reshape(-1)
            self._order = (epoch, order)
        return self._order[1]

    def __next__(self) -> dict:
        n = len(next(iter(self._arrays.values())))
        if (self.state['batch'] + 1) * self._size > n:
            self.state = {'epoch': self.state['epoch'] + 1, 'batch': 0}
        batch_rows = self.order(self.state['epoch'])[self.state['batch'] * self._size :][: self._size]
        take = batch_rows[self._rows]
        self.state['batch'] += 1
        batch = {k: v[take] for k, v in self._arrays.items()}
        if self._lengths is not None:  # the same cut on every host: from the global batch
            width = -(-int(self._lengths[batch_rows].max()) // self._multiple) * self._multiple
            batch = {k: v[:, :width] if v.ndim == 2 else v for k, v in batch.items()}
        if self._class_weights is not None:
            labels = batch['labels']
            batch['weights'] = np.where(labels >= 0, self._class_weights[np.maximum(labels, 0)], 0).astype(np.float32)
        return batch
