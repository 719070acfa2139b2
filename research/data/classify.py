"""Text classification input pipeline: TFDS (text, label) -> fixed-length ids -> batches.

Splits are small enough to hold in memory as id arrays, so the training order is a
seeded permutation per epoch and the checkpointed position {'epoch', 'batch'} resumes in
O(1). Training batches carry per-example `weights` = the class weight of the label (1
unless class weighting is on), so the trainer's weighted mean is exactly the
class-weighted cross-entropy; evaluation batches weigh every real example 1 and pad the
last batch with weight-0 rows.
"""

import collections

import numpy as np

from research.data import sources


def encode_split(config, split: str, encode, stats: collections.Counter, end_id=None):
    """(ids [N, T] int32, mask [N, T] bool, labels [N] int32) for one split, in stored order.

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
    return out, np.arange(d.seq_len)[None, :] < lengths[:, None], np.array(labels, np.int32)


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
    """Train iterator, evaluation batches and label statistics for one classification config."""

    def __init__(self, config, encode, class_names, rows: slice, eval_rows: slice,
                 data_state: dict | None = None, end_id=None):
        d = config.data
        self.config, self.class_names, self._eval_rows = config, list(class_names), eval_rows
        self.train_stats, self.eval_stats = collections.Counter(), collections.Counter()
        ids, mask, labels = encode_split(config, d.train_split, encode, self.train_stats, end_id)
        ids, mask, labels = self._downsample(ids, mask, labels)
        self.train_counts = np.bincount(labels, minlength=len(self.class_names))
        self.weights = class_weights(config, self.train_counts)
        self._train = (ids, mask, labels)
        self._eval = encode_split(config, d.eval_split, encode, self.eval_stats, end_id)
        self.train = ExampleIterator(self._train, self.weights, config.batch_size, rows,
                                     config.seed, data_state)

    def _downsample(self, ids, mask, labels):
        """Keeps a seeded fraction of the classes named in data.train_class_fraction."""
        keep = np.ones(len(labels), bool)
        rng = np.random.default_rng([self.config.seed, 7])
        for name, fraction in self.config.data.train_class_fraction:
            if name not in self.class_names:
                raise ValueError(f'config.data.train_class_fraction names {name!r}; classes: {self.class_names}')
            members = np.flatnonzero(labels == self.class_names.index(name))
            drop = rng.permutation(members)[int(round(fraction * len(members))):]
            keep[drop] = False
        return ids[keep], mask[keep], labels[keep]

    def eval_labels(self) -> np.ndarray:
        return self._eval[2]

    def eval_batches(self):
        """This host's rows of each global eval batch; the last is padded with weight-0 rows."""
        ids, mask, labels = self._eval
        n = self.config.eval_batch_size
        for start in range(0, len(labels), n):
            b = _batch(ids[start:start + n], mask[start:start + n], labels[start:start + n],
                       np.ones(min(n, len(labels) - start), np.float32), n)
            yield {k: v[self._eval_rows] for k, v in b.items()}


def _batch(ids, mask, labels, weights, size: int) -> dict:
    """Pads to `size` rows with weight-0 examples."""
    pad = size - len(labels)
    return dict(inputs=np.pad(ids, ((0, pad), (0, 0))), mask=np.pad(mask, ((0, pad), (0, 0))),
                labels=np.pad(labels, (0, pad)), weights=np.pad(weights, (0, pad)))


class ExampleIterator:
    """Endless iterator of this host's rows of each global training batch.

    Epoch e visits the examples in the permutation seeded by (seed, e) and drops the last
    incomplete batch; `state` = {'epoch', 'batch'} is the next batch, as checkpointed.
    """

    def __init__(self, arrays, class_weights, global_batch_size: int, rows: slice, seed: int,
                 state: dict | None = None):
        self._arrays, self._class_weights = arrays, class_weights
        self._size, self._rows, self._seed = global_batch_size, rows, seed
        if len(arrays[2]) < global_batch_size:
            raise ValueError(f'the training split has {len(arrays[2])} examples, fewer than one '
                             f'global batch ({global_batch_size}); lower batch_size')
        self.state = dict(state or {'epoch': 0, 'batch': 0})

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        ids, mask, labels = self._arrays
        if (self.state['batch'] + 1) * self._size > len(labels):
            self.state = {'epoch': self.state['epoch'] + 1, 'batch': 0}
        order = np.random.default_rng([self._seed, self.state['epoch']]).permutation(len(labels))
        take = order[self.state['batch'] * self._size:(self.state['batch'] + 1) * self._size][self._rows]
        self.state['batch'] += 1
        return _batch(ids[take], mask[take], labels[take], self._class_weights[labels[take]], len(take))
