"""Balanced k-shot subsets: the same draw for k-shot fine-tuning, probes and demonstrations."""

import numpy as np


def k_per_class(labels, k: int, seed: int, class_names=None) -> np.ndarray:
    """Sorted indices of k examples of every class present in `labels` [N], drawn with `seed`.

    The draw for one class depends only on (seed, class, that class's examples), so a given
    seed picks the same examples whichever code asks. A class with fewer than k examples is
    an error naming it (lower k, or drop the class from the data).
    """
    labels = np.asarray(labels)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            name = class_names[c] if class_names is not None else int(c)
            raise ValueError(
                f'k={k} examples per class, but class {name!r} has only {len(members)}; use k <= {len(members)}'
            )
        rng = np.random.default_rng([seed, int(c), 1729])
        picked.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def pairs(labels, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SetFit-style pairs (a, b, same [P] int32): every round, each example is paired once with
    a random example of its class (itself only if it is alone) and once with one of another
    class (if there is one)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 4242])
    members = {y: np.flatnonzero(labels == y) for y in np.unique(labels)}
    others_of = {y: np.flatnonzero(labels != y) for y in members}
    a, b, same = [], [], []
    for _ in range(rounds):
        for i, y in enumerate(labels):
            mates, others = members[y][members[y] != i], others_of[y]
            a.append(i), b.append(int(rng.choice(mates)) if len(mates) else i), same.append(1)
            if len(others):
                a.append(i), b.append(int(rng.choice(others))), same.append(0)
    return np.array(a, np.int64), np.array(b, np.int64), np.array(same, np.int32)
