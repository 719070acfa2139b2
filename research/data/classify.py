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


def encode_split(config, split: str, stats: collections.Counter, *, encode, end_id=None) -> dict:
    """{'ids' [N, T] int32, 'mask' [N, T] bool, 'labels' [N] int32} for one split, in stored order.

    Texts longer than seq_len are cut (and counted); `end_id` (e.g. [SEP]) stays last.
    """
    d = config.data
    ds = sources.load_split(d.name, split, d.data_dir or None)
    ids, labels = [], []
    for ex in ds.as_numpy_iterator():
        text = sources.decode_text(ex[d.text_key], stats)
        if text is None:  # empty documents are counted and dropped
            continue
        piece_ids = encode(text)
        if len(piece_ids) > d.seq_len:
            stats['truncated'] += 1
            piece_ids = piece_ids[:d.seq_len - 1] + [end_id] if end_id is not None else piece_ids[:d.seq_len]
        ids.append(piece_ids)
        labels.append(int(ex[d.label_key]))
    if not ids:
        raise ValueError(f'split {split!r} of {d.name!r} has no non-empty texts ({dict(stats)})')
    out = np.zeros((len(ids), d.seq_len), np.int32)  # 0 = <pad>/[PAD]
    for i, row in enumerate(ids):
        out[i, :len(row)] = row
    lengths = np.array([len(r) for r in ids])
    return dict(ids=out, mask=np.arange(d.seq_len)[None, :] < lengths[:, None],
                labels=np.array(labels, np.int32))


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


class ClassifyData:
    """Train iterator, evaluation batches and label statistics for one classification config.

    `encode_split(split, stats)` returns the split as {'ids', 'mask', 'labels', ...}; extra
    per-example arrays (e.g. a baseline's inputs) stay available in `train_arrays` and
    `eval_arrays`.
    """

    def __init__(self, config, encode_split, class_names, rows: slice, eval_rows: slice,
                 data_state: dict | None = None):
        d = config.data
        self.config, self.class_names, self._eval_rows = config, list(class_names), eval_rows
        self.train_stats, self.eval_stats = collections.Counter(), collections.Counter()
        self.train_arrays = self._downsample(encode_split(d.train_split, self.train_stats))
        labels = self.train_arrays['labels']
        self.train_counts = np.bincount(labels[labels >= 0], minlength=len(self.class_names))
        self.weights = class_weights(config, self.train_counts)
        self.eval_arrays = encode_split(d.eval_split, self.eval_stats)
        self.train = ExampleIterator(self.train_arrays, self.weights, config.batch_size, rows,
                                     config.seed, data_state)

    def _downsample(self, arrays: dict) -> dict:
        """Keeps a seeded fraction of the examples of the classes in data.train_class_fraction."""
        labels = arrays['labels'].reshape(len(arrays['labels']), -1)
        keep = np.ones(len(labels), bool)
        rng = np.random.default_rng([self.config.seed, 7])
        for name, fraction in self.config.data.train_class_fraction:
            if name not in self.class_names:
                raise ValueError(f'config.data.train_class_fraction names {name!r}; classes: {self.class_names}')
            members = np.flatnonzero((labels == self.class_names.index(name)).any(1))
            drop = rng.permutation(members)[int(round(fraction * len(members))):]
            keep[drop] = False
        return {k: v[keep] for k, v in arrays.items()}

    def eval_labels(self) -> np.ndarray:
        """The evaluated labels, flattened (IGNORE dropped)."""
        labels = self.eval_arrays['labels']
        return labels[labels >= 0]

    def eval_batches(self):
        """This host's rows of each global eval batch; the last is padded with weight-0 rows."""
        a, n = self.eval_arrays, self.config.eval_batch_size
        for start in range(0, len(a['labels']), n):
            labels = a['labels'][start:start + n]
            b = _batch(a['ids'][start:start + n], a['mask'][start:start + n], labels,
                       (labels >= 0).astype(np.float32), n)
            yield {k: v[self._eval_rows] for k, v in b.items()}


def _batch(ids, mask, labels, weights, size: int) -> dict:
    """Pads to `size` rows with weight-0 examples."""
    pad = lambda x: np.pad(x, ((0, size - len(x)),) + ((0, 0),) * (x.ndim - 1))
    return dict(inputs=pad(ids), mask=pad(mask), labels=pad(labels), weights=pad(weights))


class ExampleIterator:
    """Endless iterator of this host's rows of each global training batch.

    Epoch e visits the examples in the permutation seeded by (seed, e) and drops the last
    incomplete batch; `state` = {'epoch', 'batch'} is the next batch, as checkpointed.
    """

    def __init__(self, arrays: dict, class_weights, global_batch_size: int, rows: slice, seed: int,
                 state: dict | None = None):
        self._arrays, self._class_weights = arrays, class_weights
        self._size, self._rows, self._seed = global_batch_size, rows, seed
        if len(arrays['labels']) < global_batch_size:
            raise ValueError(f'the training split has {len(arrays["labels"])} examples, fewer than one '
                             f'global batch ({global_batch_size}); lower batch_size')
        self.state = dict(state or {'epoch': 0, 'batch': 0})

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        ids, mask, labels = (self._arrays[k] for k in ('ids', 'mask', 'labels'))
        if (self.state['batch'] + 1) * self._size > len(labels):
            self.state = {'epoch': self.state['epoch'] + 1, 'batch': 0}
        order = np.random.default_rng([self._seed, self.state['epoch']]).permutation(len(labels))
        take = order[self.state['batch'] * self._size:(self.state['batch'] + 1) * self._size][self._rows]
        self.state['batch'] += 1
        weights = np.where(labels[take] >= 0, self._class_weights[np.maximum(labels[take], 0)], 0)
        return _batch(ids[take], mask[take], labels[take], weights.astype(np.float32), len(take))
