"""Translation input: TFDS (source text, target text) -> SentencePiece ids -> padded arrays.

A pair is config.data.source_key / target_key (e.g. 'en' / 'es'). Each side is encoded with
the joint SentencePiece model, cut to seq_len - 1 pieces (cut pairs are counted) and ended
with <eos>; a pair with an empty side is counted and dropped. The decoder reads
inputs = <bos> target[:-1] and predicts targets (teacher forcing); weights are 1 on target
pieces and 0 on padding. Splits are small enough to hold in memory: training batches come
from classify.ExampleIterator (a seeded permutation per epoch, O(1) resume).
"""

import collections

import numpy as np

from research.data import sources


def encode_pairs(config, tokenizer, split: str, stats: collections.Counter) -> dict:
    """{'source', 'source_mask', 'inputs', 'targets', 'weights'} [N, seq_len] for one split, in
    stored order; `stats` counts 'pairs' and 'truncated' ones, and texts: 'docs', 'empty', 'non_utf8'."""
    d = config.data
    sources.check_keys(d.name, d.data_dir or None, source_key=d.source_key, target_key=d.target_key)
    src_rows, tgt_rows = [], []
    for ex in sources.load_split(d.name, split, d.data_dir or None):
        stats['pairs'] += 1
        texts = [sources.decode_text(ex[k], stats) for k in (d.source_key, d.target_key)]  # counts each side
        if None in texts:
            continue
        ids = [tokenizer.encode(t) for t in texts]
        stats['truncated'] += max(map(len, ids)) > d.seq_len - 1
        src_rows.append(ids[0][: d.seq_len - 1] + [tokenizer.eos_id])
        tgt_rows.append(ids[1][: d.seq_len - 1] + [tokenizer.eos_id])
    if not src_rows:
        raise ValueError(f'split {split!r} of {d.name!r} has no non-empty pairs ({dict(stats)})')
    source, targets = pad(src_rows, d.seq_len), pad(tgt_rows, d.seq_len)
    inputs = np.concatenate([np.full((len(targets), 1), tokenizer.bos_id, np.int32), targets[:, :-1]], 1)
    inputs = np.where(targets > 0, inputs, 0)  # no input after the last target
    return dict(
        source=source,
        source_mask=source > 0,
        inputs=inputs,
        targets=targets,
        weights=(targets > 0).astype(np.float32),
    )


def pad(rows: list, length: int) -> np.ndarray:
    """Lists of ids -> [N, length] int32, zero (<pad>) padded."""
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
