"""What every evaluator shares: the context it runs in, batched prediction, metric names.

An evaluator is built from one entry of `config.evals` (`name: dict(type=…, split=…,
every=…, batch_size=…, <options>)`) and a `Context` (config, task, vocab, model, mesh,
parameter shardings, workdir); `run(params)` returns its metrics named
`<split>/<name>/<metric>` (a `task` evaluator writes `<split>/<metric>`). It never
sees the trainer: it asks the context for jitted predict functions over example arrays.
"""

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from research import metrics, plots, sharding
from research.data.batching import num_batches, padded_batches
from research.schema import ConfigError

POOLINGS = ('mean', 'cls', 'target')


def split_prefix(split: str) -> str:
    """The metric prefix of a split: 'validation' -> 'val', 'test' -> 'test', 'train' ->
    'train_eval' (never 'train/': that is the training loss), expressions sanitised."""
    name = re.sub(r'[^A-Za-z0-9]+', '_', split).strip('_')
    return {'validation': 'val', 'train': 'train_eval'}.get(name, name)


@dataclasses.dataclass
class Context:
    """Everything an evaluator may use; built once per run by the trainer (or research.evaluate)."""

    config: Any
    task: Any
    vocab: Any
    model: Any
    mesh: Any
    param_shardings: Any
    workdir: str
    log: Callable = print

    def jit(self, fn):
        """`fn(params, batch) -> outputs` jitted on the mesh: params as trained, the batch split
        over the data axes, outputs replicated (so every host gets every row). Takes this
        host's numpy rows of a global batch."""
        jitted = jax.jit(
            fn,
            in_shardings=(self.param_shardings, sharding.batch_sharding(self.mesh)),
            out_shardings=sharding.replicated(self.mesh),
        )

        def call(params, local_batch):
            with sharding.context(self.mesh, self.config.mesh.rules):
                return jax.device_get(jitted(params, sharding.global_batch(local_batch, self.mesh)))

        return call

    def predict(self, jitted, params, arrays: dict, batch_size: int, desc: str = '') -> dict:
        """Runs `jitted` (from `jit`) over every row of `arrays` in global batches of
        `batch_size`; returns its outputs for exactly those rows, in order."""
        n = len(next(iter(arrays.values())))
        if n == 0:
            raise ValueError(f'nothing to evaluate: no examples ({desc or "predict"})')
        outs = []
        bar = tqdm.tqdm(
            padded_batches(arrays, batch_size, sharding.local_rows(batch_size)),
            desc=desc,
            total=num_batches(n, batch_size),
            leave=False,
            dynamic_ncols=True,
            disable=not (self.config.progress_bar and jax.process_index() == 0),
        )
        for batch in bar:
            outs.append(jitted(params, batch))
        return jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outs)


class Evaluator:
    """Base class: common options, the metric prefix and classification reporting.

    Options common to every type: `split` (default config.data.eval_split), `every` (steps
    between runs during training; default config.eval_every; 0 = only at the end; runs also
    happen at step 0 of a fresh run when every > 0) and `batch_size` (global; default
    config.eval_batch_size).
    """

    def __init__(self, ctx: Context, name: str, *, split: str = '', every: int = -1, batch_size: int = 0):
        c = ctx.config
        self.ctx, self.name = ctx, name
        self.split = split or c.data.eval_split
        self.every = c.eval_every if every < 0 else every
        self.batch_size = batch_size or c.eval_batch_size

    needs: frozenset = frozenset()  # the task capabilities it uses (research/tasks/base.py CAPABILITIES)

    @classmethod
    def needs_for(cls, config, options: dict) -> frozenset:
        """The capabilities this evaluator needs with these options (default: `needs`)."""
        return cls.needs

    @classmethod
    def check(cls, config, name: str, options: dict):
        """Value checks that need no data or model (raise ConfigError); types are checked
        against the constructor's defaults by the registry."""

    named = True  # metric names carry the evaluator's name (the task evaluator's do not)

    @property
    def prefix(self) -> str:
        return f'{split_prefix(self.split)}/' + (f'{self.name}/' if self.named else '')

    def run(self, params) -> dict:
        raise NotImplementedError

    def classification(self, labels, scores, suffix: str = '') -> dict:
        """Accuracy / macro-F1 of argmax(scores [N, C]) against labels [N], named with the prefix
        (and `suffix`), and their confusion matrix as a PNG."""
        cm = metrics.confusion(labels, np.argmax(scores, axis=-1), len(self.ctx.task.class_names()))
        self.confusion_png(cm, suffix)
        return {f'{self.prefix}{k}{suffix}': v for k, v in metrics.accuracy_and_macro_f1(cm).items()}

    def confusion_png(self, cm, suffix: str = ''):
        """WORKDIR/confusion/<prefix><suffix>.png (process 0)."""
        tag = (self.prefix + suffix).strip('/').replace('/', '_')
        if jax.process_index() == 0:
            os.makedirs(os.path.join(self.ctx.workdir, 'confusion'), exist_ok=True)
            plots.confusion_matrix(
                np.asarray(cm),
                self.ctx.task.class_names(),
                os.path.join(self.ctx.workdir, 'confusion', f'{tag}.png'),
                tag,
            )


def label_texts(class_names, labels=(), template: str = '{label}') -> list[list[str]]:
    """Per class, the texts that stand for it: `labels` is a tuple of (class name, text or tuple
    of texts) pairs (classes left out use their own name), each put into `template`."""
    given = {}
    for pair in labels:
        if len(pair) != 2 or pair[0] not in class_names:
            raise ConfigError(
                f'labels entry {pair!r}: use (class name, text or texts) with a class name in {list(class_names)}'
            )
        given[pair[0]] = [pair[1]] if isinstance(pair[1], str) else list(pair[1])
    return [[template.format(label=t) for t in given.get(name, [name])] for name in class_names]


def check_template(template: str, where: str, fields=('label',)):
    """A template must contain every `{field}` exactly once and no other placeholder."""
    found = re.findall(r'{(\w*)}', template)
    unknown = sorted(set(found) - set(fields))
    if unknown:
        raise ConfigError(f'{where}={template!r}: unknown placeholder {{{unknown[0]}}}; use {fields}')
    for field in fields:
        if field not in found:
            raise ConfigError(f'{where}={template!r} has no {{{field}}}; e.g. "This is about {{{field}}}."')
        if found.count(field) > 1:
            raise ConfigError(f'{where}={template!r} has {{{field}}} {found.count(field)} times; use it once')


def template_parts(template: str, *slots) -> list:
    """The literal pieces of a checked template around its slots, in order:
    template_parts('{text} is about {label}.', '{text}', '{label}') -> ['', ' is about ', '.']."""
    parts, rest = [], template
    for slot in slots:
        head, _, rest = rest.partition(slot)
        parts.append(head)
    return parts + [rest]


def fingerprint(params) -> str:
    """sha256 of a parameter tree's paths, shapes, dtypes and values: the model part of
    feature-cache keys (single-process runs: every leaf is on this host)."""
    h = hashlib.sha256()
    for path, x in jax.tree_util.tree_leaves_with_path(params):
        value = np.ascontiguousarray(jax.device_get(x))
        h.update(f'{jax.tree_util.keystr(path)} {value.shape} {value.dtype}'.encode())
        h.update(value.tobytes())
    return h.hexdigest()


class Features:
    """Pooled encoder features of a split's labelled examples, cached on disk.

    The cache file is keyed by the encoder's parameter fingerprint, the model and data
    settings that shape an example (task, model section, dataset, split, text/label keys,
    tokenizer, vocab, casing, numbers, max length) and the pooling, so a changed model or
    setting never reads stale features; it holds the rows computed so far (a k-shot probe
    needs only a few training rows) and grows as more are asked for. Multi-process runs
    compute without the cache: every process must make the same jitted calls, and hosts
    may not share a disk.
    """

    def __init__(self, ctx: Context, pooling: str, batch_size: int, cache_dir: str = ''):
        self.ctx, self.pooling, self.batch_size = ctx, pooling, batch_size
        self.cache_dir = cache_dir or os.path.join(ctx.workdir, 'features')
        self._embed = ctx.jit(ctx.task.pooled(ctx.vocab, pooling))

    def key(self, params) -> str:
        """The cache key of these params (a fingerprint), or '' when the cache is off."""
        return fingerprint(params) if jax.process_count() == 1 else ''

    def _path(self, model_key: str, split: str) -> str:
        c, d = self.ctx.config, self.ctx.config.data
        fields = (
            'name',
            'data_dir',
            'text_key',
            'label_key',
            'tokenizer',
            'vocab_path',
            'lowercase',
            'normalize_numbers',
            'seq_len',
            'label_pieces',
            'train_class_fraction',
            'seed',
        )
        key = repr((model_key, c.task, sorted(c.model.to_dict().items()), [d[f] for f in fields], split, self.pooling))
        return os.path.join(self.cache_dir, hashlib.sha256(key.encode()).hexdigest()[:24] + '.npz')

    def of_texts(self, params, texts) -> np.ndarray:
        """Features [len(texts), D] of free texts, encoded as the task encodes one example."""
        ids = [self.ctx.task.encode_text(self.ctx.vocab, t) for t in texts]
        seq_len = self.ctx.config.data.seq_len
        inputs = np.zeros((len(ids), seq_len), np.int32)
        for i, row in enumerate(ids):
            inputs[i, : len(row)] = row
        mask = np.arange(seq_len)[None, :] < np.array([len(row) for row in ids])[:, None]
        arrays = {'inputs': inputs, 'mask': mask, 'position': np.zeros(len(ids), np.int32)}
        return self.ctx.predict(self._embed, params, arrays, self.batch_size)

    def __call__(self, params, split: str, rows=None, model_key: str | None = None) -> np.ndarray:
        """Features [len(rows), D] of the split's examples `rows` (default all), float32."""
        examples = self.ctx.task.examples(self.ctx.vocab, split)
        n = len(examples['labels'])
        rows = np.arange(n) if rows is None else np.asarray(rows)
        model_key = self.key(params) if model_key is None else model_key
        cached = bool(model_key)
        path = self._path(model_key, split) if cached else ''
        have = dict(np.load(path)) if cached and os.path.exists(path) else {'rows': np.zeros(0, np.int64)}
        missing = np.setdiff1d(rows, have['rows'])
        if len(missing):
            keys = [k for k in ('inputs', 'mask', 'position') if k in examples]
            new = self.ctx.predict(
                self._embed, params, {k: examples[k][missing] for k in keys}, self.batch_size, desc=f'features {split}'
            )
            have = {
                'rows': np.concatenate([have['rows'], missing]),
                'features': np.concatenate([have['features'], new]) if 'features' in have else new,
            }
            if cached:
                os.makedirs(self.cache_dir, exist_ok=True)
                tmp = f'{path}.{os.getpid()}.tmp.npz'  # processes sharing the cache never clash
                np.savez(tmp, **have)
                os.replace(tmp, path)  # readers never see a half-written file
        where = {r: i for i, r in enumerate(have['rows'].tolist())}
        return have['features'][[where[r] for r in rows.tolist()]]


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def check_pooling(pooling: str, where: str):
    if pooling and pooling not in POOLINGS:
        raise ConfigError(f'{where}={pooling!r}: use one of {POOLINGS}')


def labelled_texts(config, split: str):
    """(texts, labels) of a text-classification split (research.data.classify.labelled_texts);
    imported here, not at module level, so config validation never loads TensorFlow."""
    from research.data.classify import labelled_texts as read

    return read(config, split)


def target_needs(config, options: dict) -> frozenset:
    """What pooling='target' (or a model.pooling of 'target' by default) adds to the needs of
    an evaluator of pooled features: examples that carry their target word."""
    target = (options['pooling'] or config.model.pooling) == 'target'
    return frozenset({'target_word'} if target else ())


def check_disjoint(config, name: str, options: dict):
    """Examples drawn from the training split must not be scored on it too."""
    split, train = options['split'] or config.data.eval_split, options['train_split'] or config.data.train_split
    if split == train:
        raise ConfigError(
            f'config.evals.{name}: split and train_split are both {split!r}; an example could '
            f'be its own training example or demonstration'
        )


def word_encoder(config, vocab):
    """text -> word ids (no special tokens): the tokenization of the LM and MLM tasks."""
    from research.text.words import WordTokenizer

    tokenizer = WordTokenizer(config.data.lowercase, config.data.normalize_numbers)
    return lambda text: vocab.encode(tokenizer.tokenize(text))


class LogProbScorer:
    """Sums of log p(target) over weighted positions of token rows, from `logits_fn(params,
    batch) -> [B, T, V]` (a task's next_token_logits or masked_token_logits).

    Rows are lists (inputs, targets, weights) of equal length <= length; they are padded with
    weight 0, which a causal model never reads before a real position and a masked model
    ignores through the attention mask."""

    def __init__(self, ctx: Context, logits_fn, length: int, batch_size: int):
        self.ctx, self.length, self.batch_size = ctx, length, batch_size

        def score(params, batch):
            logits = logits_fn(params, batch)
            logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
            picked = jnp.take_along_axis(logp, batch['targets'][..., None], axis=-1)[..., 0]
            return jnp.sum(picked * batch['weights'], axis=-1)

        self._score = ctx.jit(score)

    def __call__(self, params, rows, desc: str = '') -> np.ndarray:
        """[len(rows)] float64 sums."""
        n, t = len(rows), self.length
        arrays = {
            k: np.zeros((n, t), dtype)
            for k, dtype in (('inputs', np.int32), ('targets', np.int32), ('weights', np.float32), ('mask', bool))
        }
        for i, (inputs, targets, weights) in enumerate(rows):
            if len(inputs) > t:
                raise ValueError(f'a scored row has {len(inputs)} tokens, more than {t}')
            arrays['inputs'][i, : len(inputs)] = inputs
            arrays['targets'][i, : len(targets)] = targets
            arrays['weights'][i, : len(weights)] = weights
            arrays['mask'][i, : len(inputs)] = True
        return self.ctx.predict(self._score, params, arrays, self.batch_size, desc).astype(np.float64)


def mean_and_std(results: list, prefix: str) -> dict:
    """Per-seed metric dicts -> the mean under each name, the sample std under name + '_std',
    and `<prefix>seeds` (their number)."""
    out = {f'{prefix}seeds': float(len(results))}
    for key in results[0]:
        values = np.array([r[key] for r in results], np.float64)
        out[key] = float(values.mean())
        out[f'{key}_std'] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out
