"""Translation scores (sacrebleu corpus BLEU and chrF on detokenized text) and the two
reference systems a trained model must beat: copy the source, and word-for-word lookup in a
dictionary learned from the training pairs.
"""

import re

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

WORD = re.compile(r'\w+|[^\w\s]')


def scores(hypotheses: list, references: list, bootstrap: int = 0, seed: int = 0) -> tuple[dict, str]:
    """({'bleu', 'chrf', 'length_ratio'} and, with `bootstrap` resamples of the sentences, the
    95% percentile interval of each score as '<score>_low' / '<score>_high'; the sacrebleu
    signature of both metrics)."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f'{len(hypotheses)} hypotheses for {len(references)} references')
    bleu, chrf = BLEU(), CHRF()

    def both(idx):
        hyps, refs = [hypotheses[i] for i in idx], [[references[i] for i in idx]]
        b = bleu.corpus_score(hyps, refs)
        return b.score, chrf.corpus_score(hyps, refs).score, b.sys_len / max(b.ref_len, 1)

    out = dict(zip(('bleu', 'chrf', 'length_ratio'), both(range(len(references)))))
    if bootstrap:
        rng = np.random.default_rng(seed)
        resampled = np.array([both(rng.integers(0, len(references), len(references)))[:2] for _ in range(bootstrap)])
        for j, name in enumerate(('bleu', 'chrf')):
            out[f'{name}_low'], out[f'{name}_high'] = np.percentile(resampled[:, j], [2.5, 97.5]).tolist()
    return out, f'BLEU {bleu.get_signature()} chrF {chrf.get_signature()}'


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
