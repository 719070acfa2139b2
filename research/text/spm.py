"""A joint SentencePiece model (unigram or BPE) as a tokenizer artifact, for translation.

Trained offline by `python -m research.tools.build_spm` into FILE.model (+ FILE.vocab, for
reading); a config references FILE.model. Ids follow our word vocabulary's specials where
they exist: 0 <pad>, 1 <unk>, 2 <bos>, 3 <eos>. Text is not normalised and whitespace is
kept as it is, so decode(encode(text)) == text exactly.
"""

import os

SPECIALS = dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3)


def train(texts, prefix: str, vocab_size: int, model_type: str = 'unigram', character_coverage: float = 1.0):
    """Trains a model on an iterator of strings; writes prefix.model and prefix.vocab."""
    import sentencepiece

    if model_type not in ('unigram', 'bpe'):
        raise ValueError(f"model_type={model_type!r}: use 'unigram' or 'bpe'")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        normalization_rule_name='identity',
        remove_extra_whitespaces=False,
        split_digits=True,
        byte_fallback=True,  # any character round-trips, even one unseen in training
        minloglevel=2,
        **SPECIALS,
    )


class SentencePiece:
    """Encodes text to ids and back with a trained FILE.model."""

    def __init__(self, path: str):
        import sentencepiece

        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'SentencePiece model {path!r} not found; build it with `python -m research.tools.build_spm '
                f'--dataset NAME --keys en,es --vocab_size 8000 --out {path.removesuffix(".model")}`'
            )
        self.sp = sentencepiece.SentencePieceProcessor(model_file=path)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (SPECIALS[k] for k in SPECIALS)

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids) -> str:
        """Ids -> text; stops at the first <eos> and skips <pad>/<bos>."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.sp.decode([i for i in ids if i not in (self.pad_id, self.bos_id)])
