"""Config loading and validation.

An experiment is a python file with `get_config(arg: str) -> ConfigDict`; `arg` is a
`key=value,…` string parsed against typed defaults (`parse_arg`). Every field an
experiment may set lives in `base_config()`: an experiment or an override naming any
other field, or giving a value of another type, is an error raised before anything is
built or compiled, with one line naming the key and the fix.
"""

import ast
import contextlib
import importlib.util
import os

import ml_collections

from research.schema import ConfigError, check_type, located, need
from research.tasks import ARCHS, TASKS, offering, task_class

# Logical axis name -> mesh axes. Parameters and activations carry the logical names
# (see research/models); these rules decide how they are laid out on the mesh.
DEFAULT_RULES = (
    ('batch', ('data', 'fsdp')),
    ('length', None),
    ('embed', 'fsdp'),
    ('vocab', 'tensor'),
    ('heads', 'tensor'),
    ('kv', None),
    ('mlp', 'tensor'),
    ('layers', None),  # the stacked axis of scanned blocks
)


def base_config() -> ml_collections.ConfigDict:
    """Every config field with its default. Experiments override, never add."""
    c = ml_collections.ConfigDict()
    c.task = 'lm'
    c.seed = 0  # parameter init and dropout (data order, subsets and masks: data.seed)
    c.total_steps = 1000  # 0: evaluate only (the init_from model, or the workdir's checkpoint)
    c.batch_size = 32  # global, across all hosts and devices
    c.grad_accum = 1  # micro-batches per step; batch_size must divide evenly
    c.eval_batch_size = 64  # global
    c.log_every = 50
    c.eval_every = 250  # evaluators' default period; 0: evaluate only at the end
    c.checkpoint_every = 500
    c.checkpoint_minutes = 0.0  # > 0: also save when this long has passed since the last save
    c.keep_checkpoints = 3
    c.progress_bar = True
    c.peak_flops = 0.0  # per-device FLOP/s for MFU; 0: measure a float32 matmul at start
    c.profile_steps = 0  # > 0: a jax.profiler trace of that many steps (after the first) in WORKDIR/profile
    c.dropout_rng = 'threefry2x32'  # dropout keys' PRNG: 'threefry2x32', or 'rbg' / 'unsafe_rbg' (cheaper masks)
    c.resume = ''  # a workdir or checkpoint dir to resume the full state from
    # Params only, new heads initialised: a workdir of ours, or 'hf:PATH' (HF BERT safetensors
    # file or directory). Used when the workdir has no checkpoint and resume is empty.
    c.init_from = ''

    c.data = ml_collections.ConfigDict()
    c.data.name = 'bbc_news'  # TFDS name (local builders live in research/data)
    c.data.data_dir = ''  # TFDS data_dir; '' = TFDS default (~/tensorflow_datasets)
    c.data.text_key = 'text'
    c.data.train_split = 'train'
    c.data.eval_split = 'validation'
    c.data.vocab_path = 'artifacts/bbc_news.words.txt'
    c.data.lowercase = True
    c.data.normalize_numbers = False
    c.data.seq_len = 128
    c.data.workers = 0  # lm/mlm: grain worker processes preparing training batches (0: in the trainer's process)
    c.data.max_eval_sequences = 0  # 0: the whole eval split
    c.data.unigram_baseline = False  # fit a unigram model on train, report its val perplexity
    c.data.label_key = 'label'  # classify/tag: the label feature
    c.data.source_key = 'en'  # translate: the source-text feature
    c.data.target_key = 'es'  # translate: the target-text feature
    c.data.label_pieces = 'first'  # tag: train on each word's first subword piece, or 'all' of them
    c.data.group_key = ''  # tag: feature grouping examples (e.g. 'lemma') for a most-frequent-label baseline
    c.data.baseline_key = ''  # tag: feature holding a stored baseline prediction (e.g. 'mfs_supersense')
    c.data.mask_rate = 0.15  # mlm: fraction of words selected
    c.data.whole_word = True  # mlm: select whole words (all their pieces)
    c.data.tokenizer = 'words'  # 'words' (vocab_path: our word vocab) or 'wordpiece' (a BERT vocab.txt)
    c.data.train_class_fraction = ()  # e.g. (('business', 0.1),): keep 10% of that class in train
    c.data.seed = 0  # data order, MLM masks, downsampling
    c.data.train_examples_per_class = 0  # k > 0: train on a balanced k-shot subset (classify, tag, contrastive)
    c.data.subset_seed = 0  # which k-shot subset (the same draw as a probe's seed)
    c.data.pair_rounds = 5  # contrastive: same/different-class pairs per example and round

    c.model = ml_collections.ConfigDict()
    # lm: 'gpt'; classify: 'bag' (bag of embeddings) or 'bert'; tag: 'bert'; mlm: 'bert'
    # (BERT layout) or 'encoder' (pre-LN, rotary)
    c.model.arch = 'gpt'
    c.model.pooling = 'mean'  # classify with an encoder: 'mean' over real tokens or 'cls'
    # Dims of the 'tiny' size; experiments take `size=NAME` (research/models/sizes.py).
    c.model.num_layers = 2
    c.model.d_model = 128
    c.model.num_heads = 4
    c.model.mlp_dim = 512
    c.model.max_len = 512
    c.model.positions = 'learned'  # or 'rotary'
    c.model.tie_embeddings = True
    c.model.dropout = 0.1
    c.model.dtype = 'float32'  # compute dtype
    c.model.param_dtype = 'float32'  # storage dtype
    c.model.remat = 'none'  # rematerialise blocks in the backward pass: 'none' | 'full' | 'dots_saveable'
    c.model.scan_layers = False  # one scanned block body (compile time flat in depth; params 'blocks', stacked)
    # Fused attention in bfloat16/float16 (jax.nn.dot_product_attention's implementation):
    # 'xla' (any device) or 'cudnn' (cuDNN flash attention; NVIDIA GPUs only, jax raises elsewhere).
    c.model.attention = 'xla'
    c.model.logits_chunk = 512  # LM/MLM loss: tokens of the batch whose logits exist at once (research/losses.py)

    c.loss = ml_collections.ConfigDict()
    c.loss.label_smoothing = 0.0  # train on (1 - ε) one-hot + ε uniform (tasks with classes)
    # classification only:
    c.loss.class_weights = ()  # explicit per-class weights, in label order
    c.loss.balanced = False  # weights n / (classes * n_c) from the training label counts

    c.optim = ml_collections.ConfigDict()
    c.optim.name = 'adamw'  # or 'sgd'
    c.optim.lr = 1e-3
    c.optim.schedule = 'cosine'  # 'cosine' | 'linear' | 'constant' (after warmup)
    c.optim.warmup_steps = 100
    c.optim.end_lr_ratio = 0.1  # final lr / peak lr for cosine and linear decay
    c.optim.weight_decay = 0.01
    c.optim.b1 = 0.9
    c.optim.b2 = 0.98
    c.optim.eps = 1e-9
    c.optim.momentum = 0.9  # sgd only
    c.optim.clip_norm = 1.0  # 0: no clipping
    c.optim.freeze = ''  # regex over param paths to freeze; linear probe: '^(?!head/)'
    c.optim.layer_decay = 1.0  # layer-wise lr decay for fine-tuning (e.g. 0.8)

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all devices not used by the other axes
    c.mesh.fsdp = 1
    c.mesh.tensor = 1
    c.mesh.rules = DEFAULT_RULES

    # Evaluators by name: dict(type=…, split=…, every=…, batch_size=…, <options>); see
    # research/evaluators. Empty: {'task': dict(type='task')}, the task's metrics on data.eval_split.
    c.evals = ml_collections.ConfigDict()

    c.sample = ml_collections.ConfigDict()  # generated at the end of training
    c.sample.prompts = ()
    c.sample.max_new_tokens = 40
    c.sample.temperature = 0.8
    c.sample.top_k = 40
    return c


def parse_arg(arg: str, **defaults):
    """Parses `key=value,…` (bare `key` means True) against typed defaults."""
    out = dict(defaults)
    for item in filter(None, (s.strip() for s in (arg or '').split(','))):
        key, _, value = item.partition('=')
        if key not in defaults:
            raise ConfigError(f'unknown config argument {key!r}; known: {sorted(defaults)}')
        if not _ and not isinstance(defaults[key], bool):
            raise ConfigError(f'config argument {key!r} needs a value ({key}=…); default {defaults[key]!r}')
        out[key] = _coerce(f'arg {key}', value if _ else 'True', defaults[key])
    return ml_collections.ConfigDict(out)


def _coerce(name, text: str, like):
    """Converts override text to the type of `like`, or raises a one-line ConfigError."""
    if isinstance(like, str):  # raw text; a quoted python string is unquoted
        quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in '\'"'
        return ast.literal_eval(text) if quoted else text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ConfigError(f'{name}={text!r} is not a python literal; expected {type(like).__name__}') from None
    return check_type(name, value, like)


def load_module(path: str):
    """The experiment file at `path`, executed as a module."""
    if not os.path.isfile(path):
        raise ConfigError(f'config file {path!r} not found; pass --config experiments/NAME.py[:args]')
    module_spec = importlib.util.spec_from_file_location('experiment_config', path)
    module = importlib.util.module_from_spec(module_spec)
    with _located(path):
        module_spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _located(path: str):
    """Turns an error raised by the experiment file's own code into one ConfigError line
    `path:line: problem` (config errors it raises itself pass through)."""
    try:
        yield
    except ConfigError:
        raise
    except SyntaxError as e:
        raise ConfigError(f'{located(e, path)}: {e.msg}; fix the experiment file') from None
    except Exception as e:
        raise ConfigError(f'{located(e, path)}: {type(e).__name__}: {e}; fix the experiment file') from None


def load_config(spec: str, overrides=()) -> ml_collections.ConfigDict:
    """Loads `path/to/exp.py[:arg]`, applies `key.sub=value` overrides, validates types."""
    path, _, arg = spec.partition(':')
    module = load_module(path)
    if not callable(getattr(module, 'get_config', None)):
        raise ConfigError(f'{path} defines no get_config(arg); an experiment file returns its config from one')
    with _located(path):
        config = module.get_config(arg)
    check_fields(config)
    for item in overrides:
        key, eq, value = item.partition('=')
        if not eq:
            raise ConfigError(f'override {item!r} must look like --config.KEY=VALUE')
        set_field(config, key, value)
    return config


def is_field(key: str) -> bool:
    """Whether dotted `key` names a config field (or an option under evals.NAME.)."""
    *parents, leaf = key.split('.')
    if parents[:1] == ['evals']:
        return len(parents) <= 2
    node = base_config()
    for part in parents:
        if not isinstance(node.get(part), ml_collections.ConfigDict):
            return False
        node = node[part]
    return leaf in node and not isinstance(node[leaf], ml_collections.ConfigDict)


def set_field(config, key: str, text: str):
    """Sets dotted `key` from override text (--config.KEY=TEXT), typed like its default."""
    _set(config, key, lambda name, like: _coerce(name, text, like) if like is not None else _literal(text))


def set_value(config, key: str, value):
    """Sets dotted `key` to a python value (a sweep point), typed like its default."""
    _set(config, key, lambda name, like: check_type(name, value, like) if like is not None else value)


def _literal(text: str):
    """A python literal, `dict(key=literal, …)` included (evaluator entries); else the text."""
    try:
        node = ast.parse(text, mode='eval').body
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'dict' and not node.args:
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        return ast.literal_eval(node)
    except (ValueError, SyntaxError):
        return text


def _set(config, key: str, convert):
    """Finds `key` in base_config() (or an existing evaluator under evals) and sets it to
    convert(name, default) -- default None for an evaluator option not set yet (the
    evaluator registry checks those)."""
    *parents, leaf = key.split('.')
    if parents == ['evals']:  # a whole evaluator: evals.NAME=dict(type=…, …)
        entry = convert(f'config.{key}', None)
        if not isinstance(entry, dict) or 'type' not in entry:
            raise ConfigError(f'config.{key} must be a dict with a type, e.g. dict(type="task", split="test")')
        config.evals[leaf] = entry
        return
    if parents[:1] == ['evals']:
        if len(parents) != 2 or parents[1] not in config.evals:
            raise ConfigError(
                f'config key {key!r}: use evals.NAME.OPTION with NAME one of the '
                f"experiment's evaluators {sorted(config.evals)}, or evals.NAME=dict(type=…)"
            )
        node = config.evals[parents[1]]
        node[leaf] = convert(f'config.{key}', node[leaf] if leaf in node else None)
        return
    node, base_node = config, base_config()
    for part in parents:
        if part not in base_node or not isinstance(base_node[part], ml_collections.ConfigDict):
            raise ConfigError(f'unknown config key {key!r}; see research/config.py base_config()')
        node, base_node = node[part], base_node[part]
    if leaf not in base_node or isinstance(base_node[leaf], ml_collections.ConfigDict):
        raise ConfigError(f'unknown config key {key!r}; see research/config.py base_config()')
    node[leaf] = convert(f'config.{key}', base_node[leaf])


def check_fields(config, base=None, prefix=''):
    """Every key must exist in base_config() and hold a value of the default's type
    (evaluator entries under `evals` are checked by research.evaluators)."""
    base = base_config() if base is None else base
    for key, value in config.items():
        name = prefix + key
        if key not in base:
            raise ConfigError(f'unknown config key {name!r}; see research/config.py base_config()')
        if isinstance(base[key], ml_collections.ConfigDict):
            if not isinstance(value, ml_collections.ConfigDict):
                raise ConfigError(f'config.{name} must be a section, got {value!r}')
            if name != 'evals':
                check_fields(value, base[key], name + '.')
        else:
            config[key] = check_type(f'config.{name}', value, base[key])


def validate(config, num_devices: int, num_processes: int = 1, files: bool = True):
    """Checks values that types cannot: divisibility, choices, files. Raises ConfigError.
    Run once per run (research.main); the components check their own sections: the mesh
    (research.sharding), the optimizer (research.optim), the task (Task.check) and the
    evaluators with what the task offers them (research.evaluators.check)."""
    from research import evaluators, optim, sharding  # jax: imported to validate, not to load a config

    need(config.batch_size >= 1, f'config.batch_size={config.batch_size} must be >= 1')
    data = sharding.check_mesh(config.mesh, num_devices)
    shards = data * config.mesh.fsdp  # the batch is split over both data and fsdp
    need(config.grad_accum >= 1, f'config.grad_accum={config.grad_accum} must be >= 1')
    need(config.data.workers >= 0, f'config.data.workers={config.data.workers} must be >= 0 (0: no worker processes)')
    micro = config.batch_size // config.grad_accum
    need(
        config.batch_size % config.grad_accum == 0,
        f'config.batch_size={config.batch_size} is not divisible by config.grad_accum={config.grad_accum}',
    )
    need(
        micro % shards == 0 and micro > 0,
        f'config.batch_size={config.batch_size} (per micro-batch {micro}) is not divisible by the '
        f'{shards} data-parallel shards (mesh data*fsdp); use a multiple of {shards}',
    )
    for key in ('batch_size', 'eval_batch_size'):
        need(
            config[key] % num_processes == 0,
            f'config.{key}={config[key]} is not divisible by the {num_processes} processes',
        )
    need(
        config.eval_batch_size % shards == 0 and config.eval_batch_size > 0,
        f'config.eval_batch_size={config.eval_batch_size} is not divisible by the {shards} '
        f'data-parallel shards; use a multiple of {shards}',
    )
    need(config.total_steps >= 0, f'config.total_steps={config.total_steps} must be >= 0 (0: evaluate only)')
    for key in ('log_every', 'checkpoint_every'):
        need(config[key] >= 1, f'config.{key}={config[key]} must be >= 1')
    need(config.checkpoint_minutes >= 0, f'config.checkpoint_minutes={config.checkpoint_minutes} must be >= 0')
    need(config.eval_every >= 0, f'config.eval_every={config.eval_every} must be >= 0')
    need(config.profile_steps >= 0, f'config.profile_steps={config.profile_steps} must be >= 0')
    need(
        config.dropout_rng in ('threefry2x32', 'rbg', 'unsafe_rbg'),
        f"config.dropout_rng={config.dropout_rng!r}: use 'threefry2x32', 'rbg' or 'unsafe_rbg'",
    )
    need(config.task in TASKS, f'config.task={config.task!r}: choose one of {TASKS}')
    need(
        config.data.tokenizer in ('words', 'wordpiece'),
        f"config.data.tokenizer={config.data.tokenizer!r}: use 'words' or 'wordpiece'",
    )
    need(
        config.model.remat in ('none', 'full', 'dots_saveable'),
        f"config.model.remat={config.model.remat!r}: use 'none', 'full' or 'dots_saveable'",
    )
    archs = ARCHS[config.task]
    need(config.model.arch in archs, f'config.model.arch={config.model.arch!r}: task {config.task} takes {archs}')
    task_class(config.task).check(config)
    if config.init_from.startswith('hf:') and 'load_hf' not in task_class(config.task).offers(config.model.arch):
        who = ', '.join(f'{task} (model.arch {arch!r})' for task, arch, offers in offering() if 'load_hf' in offers)
        raise ConfigError(
            f'config.init_from={config.init_from!r}: a Hugging Face BERT checkpoint loads into tasks {who}, '
            f'not task {config.task!r} with model.arch {config.model.arch!r}'
        )
    ls = config.loss.label_smoothing
    need(0 <= ls < 1, f'config.loss.label_smoothing={ls} must be in [0, 1) (0.1 is usual; 0 turns it off)')
    need(config.keep_checkpoints >= 1, f'config.keep_checkpoints={config.keep_checkpoints} must be >= 1')
    md = config.model
    need(0.0 <= md.dropout < 1.0, f'config.model.dropout={md.dropout} must be in [0, 1)')
    need(
        md.positions != 'rotary' or (md.d_model // max(md.num_heads, 1)) % 2 == 0,
        f'rotary positions need an even head dim; d_model/num_heads = {md.d_model}/{md.num_heads}',
    )
    need(
        not config.sample.prompts or config.sample.max_new_tokens < md.max_len,
        f'config.sample.max_new_tokens={config.sample.max_new_tokens} must be < config.model.max_len={md.max_len}',
    )
    need(md.positions in ('learned', 'rotary'), f"config.model.positions={md.positions!r}: use 'learned' or 'rotary'")
    need(
        md.attention in ('xla', 'cudnn'),
        f"config.model.attention={md.attention!r}: use 'xla' or 'cudnn' (cuDNN flash attention, GPUs only)",
    )
    need(
        md.d_model % md.num_heads == 0,
        f'config.model.d_model={md.d_model} is not divisible by config.model.num_heads={md.num_heads}',
    )
    need(
        config.data.seq_len <= md.max_len,
        f'config.data.seq_len={config.data.seq_len} exceeds config.model.max_len={md.max_len}; raise max_len',
    )
    for key in ('dtype', 'param_dtype'):
        need(
            md[key] in ('float32', 'bfloat16', 'float16'),
            f"config.model.{key}={md[key]!r}: use 'float32', 'bfloat16' or 'float16'",
        )
    optim.check(config.optim)
    for name, (_, options) in evaluators.check(config).items():
        size = options.get('batch_size') or config.eval_batch_size
        need(
            size % shards == 0 and size % num_processes == 0,
            f'config.evals.{name}.batch_size={size} is not divisible by the {shards} data-parallel shards '
            f'and {num_processes} processes; use a multiple of {shards * num_processes}',
        )
    need(
        not files or os.path.isfile(config.data.vocab_path),
        f'vocab file {config.data.vocab_path!r} (config.data.vocab_path) not found; build it with '
        f'`python -m research.tools.build_vocab --dataset {config.data.name} --out {config.data.vocab_path}`',
    )
    return data
