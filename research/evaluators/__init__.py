"""Evaluators, looked up by type like research/tasks (see research/evaluators/common.py).

`config.evals = {name: dict(type=TYPE, split=…, every=…, batch_size=…, <options>)}`; with
no entry, training evaluates `{'task': dict(type='task')}` (the task's own metrics on
data.eval_split). Options are the keyword arguments of the type's `Evaluator`; unknown
options and wrong types are config errors before anything is built.
"""

import importlib
import inspect

from research import tasks
from research.schema import ConfigError, check_type

TYPES = {
    'task': 'research.evaluators.task',
    'zero_shot_similarity': 'research.evaluators.similarity',
    'zero_shot_cloze': 'research.evaluators.cloze',
    'zero_shot_choice': 'research.evaluators.choice',
    'in_context': 'research.evaluators.in_context',
    'probe': 'research.evaluators.probe',
    'translate': 'research.evaluators.translate',
}
DEFAULT = {'task': {'type': 'task'}}


def evaluator_class(type_: str):
    if type_ not in TYPES:
        raise ConfigError(f'unknown evaluator type {type_!r}; choose one of {sorted(TYPES)}')
    return importlib.import_module(TYPES[type_]).Evaluator


def entries(config) -> dict:
    """name -> (type, options) of config.evals (or the default)."""
    evals = config.evals.to_dict() if len(config.evals) else DEFAULT
    out = {}
    for name, entry in evals.items():
        if not isinstance(entry, dict) or 'type' not in entry:
            raise ConfigError(f'config.evals.{name} must be a dict with a type, e.g. dict(type="task")')
        options = dict(entry)
        out[name] = (options.pop('type'), options)
    return out


def options_of(cls) -> dict:
    """Keyword options (name -> default) of an Evaluator class and its base classes."""
    options = {}
    for klass in reversed(cls.__mro__):
        if '__init__' in vars(klass):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind == p.KEYWORD_ONLY:
                    options[p.name] = p.default
    return options


def check_needs(config, name: str, type_: str, needs) -> None:
    """A one-line ConfigError naming what evaluator `name` needs that config's task does not offer."""
    offered = tasks.task_class(config.task).offers(config.model.arch)
    lacking = sorted(set(needs) - offered)
    if lacking:
        who = [f'{task} (model.arch {arch!r})' for task, arch, offers in tasks.offering() if set(needs) <= offers]
        raise ConfigError(
            f'config.evals.{name} (type {type_!r}) needs {", ".join(lacking)}, which task {config.task!r} with '
            f'model.arch {config.model.arch!r} does not offer (it offers: {", ".join(sorted(offered)) or "none"}); '
            f'tasks that do: {", ".join(who) or "none"}'
        )


def matrix() -> dict:
    """{(task, arch): [evaluator types it can run with their default options]}."""
    out = {}
    for task, arch, offers in tasks.offering():
        out[task, arch] = [t for t in TYPES if evaluator_class(t).needs <= offers]
    return out


def check(config) -> dict:
    """Types, option names and option types of every evaluator, the task capabilities each
    needs, and each type's own checks; returns name -> (type, options coerced to their
    defaults' types), which it also writes back into config.evals."""
    checked, task_splits = {}, {}
    for name, (type_, options) in entries(config).items():
        if type_ == 'task':  # its metrics are named by the split alone
            split = options.get('split') or config.data.eval_split
            if split in task_splits:
                raise ConfigError(
                    f'config.evals.{name} and config.evals.{task_splits[split]} are both task '
                    f'evaluators of split {split!r}; their metrics would collide'
                )
            task_splits[split] = name
        cls = evaluator_class(type_)
        known = options_of(cls)
        for key, value in options.items():
            if key not in known:
                raise ConfigError(
                    f'config.evals.{name}.{key}: unknown option of type {type_!r}; options: {sorted(known)}'
                )
            if known[key] is not None:
                options[key] = check_type(f'config.evals.{name}.{key}', value, known[key])
        everything = {**known, **options}  # checks see every option, defaults included
        cls.check(config, name, everything)
        check_needs(config, name, type_, cls.needs_for(config, everything))
        checked[name] = (type_, options)
        if name in config.evals:
            config.evals[name] = {'type': type_, **options}
    return checked


def build(ctx) -> list:
    """The evaluators of ctx.config (checked by `check` during config validation), constructed:
    they may read data; nothing is compiled."""
    return [evaluator_class(type_)(ctx, name, **options) for name, (type_, options) in entries(ctx.config).items()]
