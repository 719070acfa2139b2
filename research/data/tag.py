"""Word-level labelling input pipeline: TFDS (words, word labels) -> subword ids + piece labels.

A dataset gives each example as `words` (config.data.text_key, a sequence of strings) and
its labels (config.data.label_key) either per word (a sequence as long as `words`, e.g. POS
tags) or for one target word (a scalar, with the word index in feature `target`, e.g.
WordNet supersense-in-context). Words are split into subword pieces and the labels moved
onto them (research.text.align; config.data.label_pieces 'first' or 'all' for training;
evaluation always reads each word's first piece, so eval counts words, not pieces).
Sequences are [CLS] pieces [SEP], cut to seq_len (around the target word, if any).
"""

import collections

import numpy as np

from research.data import sources
from research.text.align import IGNORE, labels_to_pieces


def word_labels(example: dict, label_key: str, num_words: int) -> tuple[np.ndarray, bool]:
    """(label per word, IGNORE where none; whether the label is for one target word)."""
    label = np.asarray(example[label_key])
    if label.ndim == 1:
        if len(label) != num_words:
            raise ValueError(f'{label_key!r} has {len(label)} labels for {num_words} words')
        return label.astype(np.int32), False
    out = np.full(num_words, IGNORE, np.int32)
    out[int(example['target'])] = label
    return out, True


def encode_example(
    words: list[str],
    labels: np.ndarray,
    encode_words,
    cls_id: int,
    sep_id: int,
    seq_len: int,
    mode: str,
    centre_on_target: bool = False,
) -> tuple[list[int], np.ndarray, bool]:
    """(ids, piece labels, whether it was cut): [CLS] pieces [SEP] with at most seq_len ids.

    A longer text keeps its first pieces, or with `centre_on_target` the window of pieces
    centred on the first labelled one, so a target word is never cut off.
    """
    ids, word_index = encode_words(words)
    piece_labels = labels_to_pieces(labels, word_index, mode)
    room = seq_len - 2
    start = 0
    if len(ids) > room and centre_on_target and (piece_labels >= 0).any():
        start = int(np.clip(np.argmax(piece_labels >= 0) - room // 2, 0, len(ids) - room))
    window = slice(start, start + room)
    return ([cls_id, *ids[window], sep_id], np.concatenate([[IGNORE], piece_labels[window], [IGNORE]]), len(ids) > room)


def encode_word_split(
    config, split: str, stats: collections.Counter, *, encode_words, cls_id: int, sep_id: int, mode: str = 'first'
) -> dict:
    """{'ids', 'mask', 'labels' [N, T] (IGNORE where none), 'example_labels' [N], 'groups' [N],
    'baseline' [N]} for one split. The last three are for target-word data: its label, the
    config.data.group_key feature (e.g. the lemma) and the config.data.baseline_key feature (a
    stored baseline prediction), if configured.

    Labels go on each word's first piece, or with mode='all' on all its pieces. Examples
    with no words are counted in `stats` and dropped; longer ones are cut (counted), around
    the target word if there is one.
    """
    d = config.data
    fields = ('text_key', 'label_key', 'group_key', 'baseline_key')
    sources.check_keys(d.name, d.data_dir or None, **{field: d[field] for field in fields})
    out = collections.defaultdict(list)
    for ex in sources.load_split(d.name, split, d.data_dir or None):
        stats['examples'] += 1
        words = [sources.decode_utf8(w, stats) for w in ex[d.text_key]]
        if not words:
            stats['empty'] += 1
            continue
        labels, targeted = word_labels(ex, d.label_key, len(words))
        ids, piece_labels, cut = encode_example(
            words, labels, encode_words, cls_id, sep_id, d.seq_len, mode, centre_on_target=targeted
        )
        stats['truncated'] += cut
        out['ids'].append(ids)
        out['labels'].append(piece_labels)
        if targeted:
            out['example_labels'].append(int(ex[d.label_key]))
            if d.group_key:
                out['groups'].append(sources.decode_utf8(ex[d.group_key], stats))
            if d.baseline_key:
                out['baseline'].append(int(ex[d.baseline_key]))
    if not out['ids']:
        raise ValueError(f'split {split!r} of {d.name!r} has no usable examples ({dict(stats)})')
    rows, row_labels = out.pop('ids'), out.pop('labels')
    ids, labels = np.zeros((len(rows), d.seq_len), np.int32), np.full((len(rows), d.seq_len), IGNORE, np.int32)
    for i, (row, lab) in enumerate(zip(rows, row_labels)):
        ids[i, : len(row)], labels[i, : len(row)] = row, lab
    lengths = np.array([len(row) for row in rows])
    return dict(
        ids=ids,
        mask=np.arange(d.seq_len)[None, :] < lengths[:, None],
        labels=labels,
        **{k: np.asarray(v) for k, v in out.items()},
    )
