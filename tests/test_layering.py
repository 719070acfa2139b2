"""The joints between components, read from the source: no import cycle in research/ (module
or function level), no evaluator asking for a task by name, and one declaration of the model's
dtypes (research/models/config.py)."""

import ast
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'research')


def modules() -> dict:
    """{dotted module name: path} of every module in research/."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path[:-3], os.path.dirname(ROOT)).replace(os.sep, '.')
                out[dotted.removesuffix('.__init__')] = path
    return out


def imports(path: str, known: dict) -> set:
    """The research modules `path` imports anywhere (inside functions too)."""
    found = set()
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(
                f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in known else node.module for a in node.names
            )
    return {m for m in found if m in known}


def cycle(graph: dict) -> list:
    """One import cycle of `graph` as a list of modules, or [] when there is none."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for dep in sorted(graph[node]):
            if state.get(dep) == 'open':
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 'done'
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return []


def test_no_import_cycle_in_research():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    # a package's own __init__ is imported on the way to its modules: not an arrow back
    graph = {name: {d for d in deps if not name.startswith(d + '.')} for name, deps in graph.items()}
    assert not cycle(graph), ' -> '.join(cycle(graph))
    assert cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']  # the detector finds one
    lower = ('schema', 'models', 'text', 'tasks', 'evaluators', 'data')
    for name, deps in graph.items():  # only the top (CLIs, the trainer, sweeps) reads research.config
        if name.split('.')[1:2] and name.split('.')[1] in lower:
            assert 'research.config' not in deps, f'{name} imports research.config'


def test_evaluators_never_ask_which_task_they_run_on():
    folder = os.path.join(ROOT, 'evaluators')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            with open(os.path.join(folder, name), encoding='utf-8') as f:
                text = f.read()
            assert not re.search(r'\.task\s*(==|!=|in\b|not in\b)|\.arch\s*(==|!=|in\b)', text), name


def test_model_dtypes_are_declared_once():
    declared = []
    folder = os.path.join(ROOT, 'models')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            with open(os.path.join(folder, name), encoding='utf-8') as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    fields = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign)}
                    if fields & {'dtype', 'param_dtype'}:
                        declared.append(f'{name}:{node.name}')
    assert declared == ['config.py:TransformerConfig'], declared
