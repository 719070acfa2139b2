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
# model.arch choices that a Hugging Face BERT checkpoint (init_from='hf:…') loads into
HF_ARCHS = {'classify': ('bert',), 'tag': ('bert',), 'contrastive': ('bert',)}


def task_class(name: str):
    if name not in REGISTRY:
        raise ValueError(f'unknown task {name!r}; choose one of {TASKS}')
    module, _, cls = REGISTRY[name][0].partition(':')
    return getattr(importlib.import_module(module), cls)


def get(config):
    """The task of `config.task`, built from the config."""
    return task_class(config.task)(config)
