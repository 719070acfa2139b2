"""Tasks: data + model + loss, looked up by `config.task` (the protocol: research/tasks/base.py).

The registry is plain data, so config validation can check names without importing models.
"""

import importlib

# name -> (module:class, the config.model.arch choices)
REGISTRY = {
    'lm': ('research.tasks.lm:LanguageModel', ('gpt',)),
    'classify': ('research.tasks.classify:Classify', ('bag', 'bert')),
    'tag': ('research.tasks.tag:Tag', ('bert',)),
    'mlm': ('research.tasks.mlm:MaskedLanguageModel', ('bert', 'encoder')),
    'contrastive': ('research.tasks.contrastive:Contrastive', ('bert',)),
    'translate': ('research.tasks.translate:Translate', ('seq2seq',)),
}
TASKS = tuple(REGISTRY)
ARCHS = {name: archs for name, (_, archs) in REGISTRY.items()}


def task_class(name: str):
    if name not in REGISTRY:
        raise ValueError(f'unknown task {name!r}; choose one of {TASKS}')
    module, _, cls = REGISTRY[name][0].partition(':')
    return getattr(importlib.import_module(module), cls)


def offering() -> list:
    """(task, model.arch, the capabilities it offers) for every registered task and arch."""
    return [(name, arch, task_class(name).offers(arch)) for name in TASKS for arch in ARCHS[name]]


def get(config):
    """The task of `config.task`, built from the config."""
    return task_class(config.task)(config)
