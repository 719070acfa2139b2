"""The task protocol: what the trainer and the evaluators ask of a task.

A task is data + model + loss for one kind of training (language modelling, text or word
classification, masked LM, …). It is built from the config (`research.tasks.get(config)`)
and has no mutable state besides caches of encoded splits. Required members are abstract
methods, so a task missing one cannot be instantiated; optional members have defaults
here. Anything more an evaluator may use is a named capability (CAPABILITIES) that the task
lists in `offers(arch)` and implements; evaluators list the ones they need, and config
validation compares the two, so no caller asks a task's name or probes with `hasattr`.
Metrics, splits and their prefixes belong to the evaluators (research/evaluators).
"""

import abc
from typing import Any, ClassVar

from research.models.config import TransformerConfig

# What a task may offer beyond the protocol below, by name: a method of that name (or, for
# 'target_word', a property of `examples`). A task lists what it offers for a model.arch in
# `offers(arch)`; an evaluator lists what it needs (`needs` in research/evaluators), and the
# evaluator registry compares the two -- evaluators never ask which task they run on.
CAPABILITIES = {
    'next_token_logits': 'next_token_logits(vocab) -> fn(params, batch) -> [B, T, V] float32 logits of a causal LM',
    'masked_token_logits': 'masked_token_logits(vocab) -> fn(params, batch) -> [B, T, V] float32 of a masked LM',
    'examples': "examples(vocab, split) -> one labelled example per row: 'inputs', 'mask' [N, T], 'labels' [N]",
    'target_word': "examples() rows also carry 'position' [N], the labelled word's first piece",
    'encode_text': 'encode_text(vocab, text) -> token ids of a free text as the model reads one example',
    'pooled': 'pooled(vocab, pooling) -> fn(params, batch) -> [B, D] float32 encoder features (mean, cls, target)',
    'translate': 'translate(vocab, **decoding options) -> fn(params, batch) -> [B, L] token ids of the translations',
    'load_hf': 'load_hf(path) -> params (a prefix of the tree) from a Hugging Face BERT checkpoint',
}


class Task(abc.ABC):
    name: ClassVar[str]
    headline: ClassVar[str]  # the summarize() metric the run summary and the plot follow
    baseline: ClassVar[str] = ''  # its baseline in baselines(), if the task computes one

    def __init__(self, config):
        self.config = config
        self._cache = {}

    def cached(self, key, make):
        """make() once per key (encoded splits are shared by training and every evaluator)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @abc.abstractmethod
    def load_vocab(self):
        """The tokenizer vocabulary named by config.data (len() = model vocab size)."""

    @abc.abstractmethod
    def build_model(self, vocab_size: int):
        """The Flax module trained by this task (every module of it shares model_config())."""

    def model_config(self, vocab_size: int, **overrides) -> TransformerConfig:
        """The model's one TransformerConfig: config.model with its arch's preset, at `vocab_size`
        (overrides: e.g. decode=True)."""
        return TransformerConfig.from_config(self.config.model, vocab_size, **overrides)

    @abc.abstractmethod
    def dummy_inputs(self) -> tuple:
        """Positional model inputs of the right shapes, for init / eval_shape."""

    @abc.abstractmethod
    def train_data(self, vocab, rows: slice, state: dict | None):
        """Endless iterator of this host's `rows` of each global training batch, with `state`
        (a JSON-able dict, checkpointed and passed back to resume) and `stats` (a Counter of
        data events: documents read, empty, non-UTF-8, cut, …)."""

    @abc.abstractmethod
    def eval_arrays(self, vocab, split: str) -> tuple[dict, dict]:
        """(arrays, stats): every evaluation example of `split` as arrays with a leading row
        axis (research.data.batching pads and splits them), and a dict of data counts."""

    @abc.abstractmethod
    def eval_batch(self, vocab, rows: dict) -> dict:
        """A padded batch of eval_arrays rows (with 'valid' and 'index') -> a loss() batch
        whose padding rows weigh 0."""

    @abc.abstractmethod
    def loss(self, model, params, batch, rng, train: bool) -> tuple[Any, dict]:
        """(weighted objective sum, dict of sums incl. 'loss' and 'weight') over one batch; the
        objective is label-smoothed in training (`smoothing`), the 'loss' sum never is."""

    @classmethod  # noqa: B027 (optional: nothing to check by default)
    def check(cls, config):
        """The task's own config checks (data and loss fields only it reads); one-line ConfigError."""

    @classmethod
    def offers(cls, arch: str) -> frozenset:
        """The CAPABILITIES this task offers with model.arch `arch` (none beyond the protocol)."""
        return frozenset()

    def smoothing(self, train: bool) -> float:
        """config.loss.label_smoothing while training, 0 when evaluating."""
        return float(self.config.loss.label_smoothing) if train else 0.0

    @abc.abstractmethod
    def summarize(self, sums: dict) -> dict:
        """Host sums -> named metrics (unprefixed: 'loss', 'accuracy', …)."""

    @abc.abstractmethod
    def flops_per_token(self, params) -> float:
        """Training FLOPs per input token (for MFU): research.flops of model_config() at the vocab
        size of `params` (their token table), plus the task's head."""

    def baselines(self, vocab, split: str) -> dict:
        """Reference numbers on the examples of `split` (unprefixed), e.g. a majority class."""
        return {}

    def write_outputs(self, params, vocab, workdir: str, rng):  # noqa: B027 (optional, no-op by default)
        """End-of-training artifacts beyond metrics (e.g. samples.txt)."""

    def class_names(self) -> list:
        """Names of the dataset's classes (config.data.label_key, a class-label feature)."""
        from research.data.classify import class_names

        return self.cached('class_names', lambda: class_names(self.config))
