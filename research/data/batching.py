"""Batches over in-memory example arrays: the one place evaluation pads and splits hosts.

Every evaluation (the task's loss, zero-shot scoring, features for a probe) walks the rows
of a dict of arrays in stored order, in global batches of a fixed size; the last batch is
padded with zero rows flagged `valid=False`, so nothing is dropped and no result depends on
the batch size. Each host takes its contiguous block of rows of every global batch.
"""

from collections.abc import Iterator

import numpy as np


def pad_rows(x: np.ndarray, size: int) -> np.ndarray:
    """`x` [n, ...] with zero rows appended up to `size` rows."""
    return np.pad(x, ((0, size - len(x)),) + ((0, 0),) * (x.ndim - 1))


def padded_batches(arrays: dict, global_size: int, rows: slice) -> Iterator[dict]:
    """This host's `rows` of each global batch of `arrays` (equal leading dims N), in order.

    Each batch also holds 'valid' [rows] bool (False on padding) and 'index' [rows] int32
    (the row's position in `arrays`, 0 on padding)."""
    n = len(next(iter(arrays.values())))
    for start in range(0, n, global_size):
        real = min(global_size, n - start)
        batch = {k: pad_rows(np.asarray(v[start : start + real]), global_size) for k, v in arrays.items()}
        batch['valid'] = np.arange(global_size) < real
        batch['index'] = np.where(batch['valid'], start + np.arange(global_size), 0).astype(np.int32)
        yield {k: v[rows] for k, v in batch.items()}


def num_batches(n: int, global_size: int) -> int:
    return -(-n // global_size)
