"""Tasks: data + model + loss + metrics, looked up by `config.task`."""

import importlib

TASKS = ('lm', 'classify', 'tag', 'mlm')
ARCHS = {'lm': ('gpt',), 'classify': ('bag', 'bert'), 'tag': ('bert',), 'mlm': ('bert', 'encoder')}  # model.arch choices per task


def get(name: str):
    """The task module for `name` (see research/tasks/lm.py for the interface)."""
    if name not in TASKS:
        raise ValueError(f'unknown task {name!r}; choose one of {TASKS}')
    return importlib.import_module(f'research.tasks.{name}')
