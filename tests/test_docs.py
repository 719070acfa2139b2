"""docs/design.md's Layout section is the tree as built: every path it names exists, and every
module of research/ is named there (a module added or removed without the docs turns this red)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILE_NAME = re.compile(r'(?<![\w/.])[\w-]+\.(?:py|sh|sbatch|md)\b')


def layout_tree() -> dict:
    """{path: description} of the Layout section's tree: an entry's indentation (2 per level)
    puts it under the directory above it; a line indented past the tree continues a description."""
    text = open(os.path.join(ROOT, 'docs', 'design.md')).read()
    section = text[text.index('## Layout') :]
    start = section.index('```\n') + 4
    tree, parents, path = {}, [], None
    for line in section[start : section.index('```', start)].splitlines():
        match = re.match(r'( *)(\S+)(?: {2,}(.*))?$', line)
        indent = len(match.group(1)) if match else 0
        if not match or indent > 2 * len(parents) or indent % 2:
            tree[path] += ' ' + line.strip()
            continue
        parents[indent // 2 :] = [match.group(2)]
        path = ''.join(parents)
        tree[path] = match.group(3) or ''
    return tree


def test_layout_names_only_what_exists():
    tree = layout_tree()
    assert 'research/models/layers.py' in tree and 'launch/' in tree
    named = list(tree)
    for path, description in tree.items():  # `launch/  local.sh, tpu_vm.sh, …`: files of that directory
        if path.endswith('/'):
            named += [path + name for name in FILE_NAME.findall(description)]
    assert 'launch/slurm.sbatch' in named and 'experiments/pretrain/mlm.py' in named
    missing = [p for p in named if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f'docs/design.md Layout names what does not exist: {missing}'


def test_layout_names_every_research_module():
    tree = layout_tree()
    modules = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, 'research')):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        rel = os.path.relpath(folder, ROOT)
        if rel != 'research':
            modules.append(rel + '/')  # a package (its __init__.py is described on its line)
        modules += [f'{rel}/{f}' for f in files if f.endswith('.py') and f != '__init__.py']
    absent = sorted(m for m in modules if m not in tree)
    assert not absent, f'add these to the Layout section of docs/design.md: {absent}'
