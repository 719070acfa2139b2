"""Translation scores (sacrebleu corpus BLEU and chrF on detokenized text) and the two
reference systems a trained model must beat: copy the source, and word-for-word lookup in a
dictionary learned from the training pairs.
"""

import re

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

WORD = re.compile(r'\w+|[^\w\s]')


METRICS = ('bleu', 'chrf')


def scores(hypotheses: list, references: list, bootstrap: int = 0, seed: int = 0) -> tuple[dict, str, np.ndarray]:
    """({'bleu', 'chrf', 'length_ratio'} and, with `bootstrap` resamples of the sentences, the
    95% percentile interval of each score as '<score>_low' / '<score>_high'; the sacrebleu
    signature of both metrics; the [bootstrap, 2] BLEU and chrF of the resamples, which are the
    same sentence sets for the same (number of references, bootstrap, seed): see `paired`)."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f'{len(hypotheses)} hypotheses for {len(references)} references')
    metrics = (BLEU(), CHRF())
    # Per-sentence sufficient statistics (n-gram matches and counts): the score of a corpus, or
    # of a resample of its sentences, is the metric of their sum. This is how sacrebleu's own
    # significance tests resample, without tokenizing and scoring each resample's text again.
    stats = [np.asarray(m._extract_corpus_statistics(hypotheses, [references])) for m in metrics]

    def both(weights):  # weights[i]: how often sentence i is in the (re)sample
        return [m._compute_score_from_stats(weights @ st) for m, st in zip(metrics, stats)]

    n, rng = len(references), np.random.default_rng(seed)
    bleu, chrf = both(np.ones(n, np.int64))
    out = dict(bleu=float(bleu.score), chrf=float(chrf.score), length_ratio=bleu.sys_len / max(bleu.ref_len, 1))
    samples = np.array(
        [[s.score for s in both(np.bincount(rng.integers(0, n, n), minlength=n))] for _ in range(bootstrap)]
    ).reshape(bootstrap, 2)
    if bootstrap:
        out.update(_interval(samples))
    signature = f'BLEU {metrics[0].get_signature()} chrF {metrics[1].get_signature()}'
    return out, signature, samples


def paired(a: dict, a_samples: np.ndarray, b: dict, b_samples: np.ndarray) -> dict:
    """System a against system b by paired bootstrap (Koehn, 2004), from two `scores` results
    on the same references and resamples: per metric the difference a - b ('bleu'), its 95%
    interval over the resamples ('bleu_low', 'bleu_high') and the fraction of resamples in
    which a scores higher ('bleu_wins')."""
    if a_samples.shape != b_samples.shape or not len(a_samples):
        raise ValueError(
            f'paired needs the same bootstrap resamples of both systems: {a_samples.shape} vs {b_samples.shape}'
        )
    diff = a_samples - b_samples
    wins = {f'{m}_wins': float(np.mean(diff[:, j] > 0)) for j, m in enumerate(METRICS)}
    return {**{m: a[m] - b[m] for m in METRICS}, **_interval(diff), **wins}


def _interval(samples: np.ndarray) -> dict:
    """'<metric>_low' / '<metric>_high': the 2.5th and 97.5th percentiles of the samples."""
    out = {}
    for j, m in enumerate(METRICS):
        out[f'{m}_low'], out[f'{m}_high'] = np.percentile(samples[:, j], [2.5, 97.5]).tolist()
    return out


def words(text: str) -> list:
    """Words and punctuation marks."""
    return WORD.findall(text)


def detokenize(tokens: list) -> str:
    """Words joined by spaces, with no space before closing punctuation."""
    return re.sub(r' ([.,;:!?)\]»”’])', r'\1', ' '.join(tokens))


class WordDictionary:
    """Word-for-word translation: each source word (lowercased) becomes the target word with
    the highest Dice coefficient 2·c(s, t) / (c(s) + c(t)) over the training pairs (c counts
    pairs containing the word), capitalised like the source word; punctuation and words never
    seen in training are copied (the identity)."""

    def __init__(self, pairs: list):
        src_ids, tgt_ids = {}, {}
        rows = []
        for source, target in pairs:
            s = {src_ids.setdefault(w.lower(), len(src_ids)) for w in words(source) if w[0].isalnum()}
            t = {tgt_ids.setdefault(w.lower(), len(tgt_ids)) for w in words(target) if w[0].isalnum()}
            rows.append((np.fromiter(s, np.int64), np.fromiter(t, np.int64)))
        n_tgt = max(len(tgt_ids), 1)
        # Co-occurrence counts over all (source word, target word) pairs of each pair, in numpy.
        codes = np.concatenate([(s[:, None] * n_tgt + t[None, :]).ravel() for s, t in rows] + [np.zeros(0, np.int64)])
        codes, both = np.unique(codes, return_counts=True)
        s_count = np.bincount(np.concatenate([s for s, _ in rows] + [np.zeros(0, np.int64)]), minlength=len(src_ids))
        t_count = np.bincount(np.concatenate([t for _, t in rows] + [np.zeros(0, np.int64)]), minlength=n_tgt)
        s, t = codes // n_tgt, codes % n_tgt
        dice = 2.0 * both / (s_count[s] + t_count[t])
        order = np.lexsort((-dice, s))  # by source word, best target first
        first = np.r_[True, s[order][1:] != s[order][:-1]] if len(order) else np.zeros(0, bool)
        tgt_words = list(tgt_ids)
        src_words = list(src_ids)
        self.table = {src_words[s[i]]: tgt_words[t[i]] for i in order[first]}

    def translate(self, text: str) -> str:
        out = []
        for w in words(text):
            t = self.table.get(w.lower(), w)
            out.append(t[:1].upper() + t[1:] if w[:1].isupper() else t)
        return detokenize(out)
