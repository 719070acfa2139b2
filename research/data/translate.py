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


def read_pairs(config, split: str, stats: collections.Counter, limit: int = 0) -> list:
    """(source text, target text) pairs of a split (the first `limit` ones when limit > 0), in
    stored order; `stats` counts 'pairs', and texts: 'docs', 'empty', 'non_utf8' (a pair with an
    empty or undecodable side is dropped)."""
    d = config.data
    sources.check_keys(d.name, d.data_dir or None, source_key=d.source_key, target_key=d.target_key)
    pairs = []
    for ex in sources.load_split(d.name, split, d.data_dir or None):
        if limit and len(pairs) == limit:
            break
        stats['pairs'] += 1
        texts = [sources.decode_text(ex[k], stats) for k in (d.source_key, d.target_key)]  # counts each side
        if None not in texts:
            pairs.append(tuple(texts))
    if not pairs:
        raise ValueError(f'split {split!r} of {d.name!r} has no non-empty pairs ({dict(stats)})')
    return pairs


def encode_side(tokenizer, text: str, seq_len: int) -> tuple:
    """(at most seq_len - 1 pieces of `text` and <eos>, whether pieces were cut)."""
    ids = tokenizer.encode(text)
    return ids[: seq_len - 1] + [tokenizer.eos_id], len(ids) > seq_len - 1


def encode_pairs(config, tokenizer, split: str, stats: collections.Counter) -> dict:
    """{'source', 'source_mask', 'inputs', 'targets', 'weights'} [N, seq_len] for the pairs of
    `read_pairs`; `stats` also counts 'truncated' pairs."""
    seq_len = config.data.seq_len
    src_rows, tgt_rows = [], []
    for texts in read_pairs(config, split, stats):
        (src, cut_src), (tgt, cut_tgt) = (encode_side(tokenizer, t, seq_len) for t in texts)
        stats['truncated'] += cut_src or cut_tgt
        src_rows.append(src)
        tgt_rows.append(tgt)
    source, targets = pad(src_rows, seq_len), pad(tgt_rows, seq_len)
    inputs = np.concatenate([np.full((len(targets), 1), tokenizer.bos_id, np.int32), targets[:, :-1]], 1)
    inputs = np.where(targets > 0, inputs, 0)  # no input after the last target
    return dict(
        source=source,
        source_mask=source > 0,
        inputs=inputs,
        targets=targets,
        weights=(targets > 0).astype(np.float32),
    )


def encode_sources(tokenizer, texts, length: int) -> dict:
    """{'source', 'source_mask'} [N, length] of texts to translate (each cut to length - 1 pieces)."""
    source = pad([encode_side(tokenizer, t, length)[0] for t in texts], length)
    return dict(source=source, source_mask=source > 0)


def pad(rows: list, length: int) -> np.ndarray:
    """Lists of ids -> [N, length] int32, zero (<pad>) padded."""
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
