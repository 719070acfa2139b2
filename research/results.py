"""Sweep results: every point's final metrics in one table, grouped over seeds, and plots.

A point's final metrics are its workdir's results.json (`<split>/<metric>` from the task
evaluator, `<split>/<evaluator>/<metric>` from the others). They become rows of
(point axes but the seed axis, split, evaluator), with one column per metric; a column is
the mean ± standard deviation over the points of the row (n of them) -- or, for one point
whose evaluator averaged several seeds itself (a probe), that evaluator's own mean ± std.

Writes DIR/results.csv (one line per point: axes, status, error, every metric),
DIR/results.md (the grouped table; the best row on the objective marked ★; with a pivot
axis, also the objective with one column per value of that axis: the comparison at a
glance) and
DIR/plot_<axis>.png for every numeric axis with at least 2 values (the objective against
that axis, error bars over seeds; rows without the axis drawn as horizontal lines).
"""

import csv
import json
import math
import os
import re

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _status(point_dir: str) -> tuple[str, str, dict]:
    results, error = os.path.join(point_dir, 'results.json'), os.path.join(point_dir, 'error.txt')
    if os.path.exists(results):
        metrics = json.load(open(results))
        metrics.pop('step', None)
        return 'done', '', metrics
    if os.path.exists(error):
        return 'failed', open(error).read().strip(), {}
    return 'todo', '', {}


def split_metric(name: str) -> tuple[str, str, str]:
    """'test/probe/accuracy' -> ('test', 'probe', 'accuracy'); 'val/loss' -> ('val', 'task', 'loss')."""
    parts = name.split('/')
    if len(parts) == 2:
        return parts[0], 'task', parts[1]
    return parts[0], '/'.join(parts[1:-1]), parts[-1]


def collect(sweep_dir: str, points) -> list:
    """One dict per point: point, its axes, status, error, metrics."""
    rows = []
    for p in points:
        state, error, metrics = _status(os.path.join(sweep_dir, p.name))
        rows.append({'point': p.name, 'axes': dict(p.axes), 'status': state, 'error': error, 'metrics': metrics})
    return rows


def group(rows: list, seed_axis: str) -> dict:
    """(axes without the seed axis, split, evaluator) -> {'axes', 'split', 'evaluator', 'entries': [{leaf: value}]}."""
    groups = {}
    for row in rows:
        axes = {k: v for k, v in row['axes'].items() if k != seed_axis}
        by_eval = {}
        for name, value in row['metrics'].items():
            split, evaluator, leaf = split_metric(name)
            by_eval.setdefault((split, evaluator), {})[leaf] = value
        for (split, evaluator), leaves in by_eval.items():
            key = (tuple(axes.items()), split, evaluator)
            g = groups.setdefault(key, {'axes': axes, 'split': split, 'evaluator': evaluator, 'entries': []})
            g['entries'].append(leaves)
    return groups


def summary(entries: list, leaf: str) -> tuple[float, float, int]:
    """(mean, std, n) of a metric over a row's points (see module doc); nan if absent."""
    values = [e[leaf] for e in entries if leaf in e]
    if not values:
        return math.nan, math.nan, 0
    if len(values) == 1:
        e = next(e for e in entries if leaf in e)
        return values[0], e.get(leaf + '_std', math.nan), int(e.get('seeds', 1))
    return float(np.mean(values)), float(np.std(values, ddof=1)), len(values)


def _cell(mean: float, std: float, n: int, percent: bool) -> str:
    if n == 0:
        return ''
    scale, fmt = (100, '.1f') if percent else (1, '.4g')
    text = f'{mean * scale:{fmt}}'
    if n > 1 and not math.isnan(std):
        text += f' ± {std * scale:{fmt}}'
    return text + (f' (n={n})' if n > 1 else '')


def write(
    sweep_dir: str,
    points,
    objective: str = '',
    columns=(),
    seed_axis: str = 'seed',
    split: str = '',
    direction: str = 'maximize',
    pivot: str = '',
) -> list:
    """Writes results.csv, results.md (with `pivot`: also the objective as a table with one
    column per value of that axis) and the plots; returns their paths."""
    rows = collect(sweep_dir, points)
    axes = list(dict.fromkeys(k for r in rows for k in r['axes']))
    metrics = sorted({m for r in rows for m in r['metrics']})
    paths = [os.path.join(sweep_dir, 'results.csv'), os.path.join(sweep_dir, 'results.md')]
    os.makedirs(sweep_dir, exist_ok=True)
    with open(paths[0], 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['point'] + axes + ['status', 'error'] + metrics)
        for r in rows:
            w.writerow(
                [r['point']]
                + [r['axes'].get(a, '') for a in axes]
                + [r['status'], r['error']]
                + [repr(r['metrics'][m]) if m in r['metrics'] else '' for m in metrics]
            )

    groups = list(group([r for r in rows if r['status'] == 'done'], seed_axis).values())
    leaves = list(columns) or sorted(
        {leaf for g in groups for e in g['entries'] for leaf in e if not leaf.endswith('_std') and leaf != 'seeds'}
    )
    objective = objective or ('accuracy' if 'accuracy' in leaves else (leaves[0] if leaves else ''))
    candidates = [g for g in groups if not split or g['split'] == split]
    scored = [(summary(g['entries'], objective)[0], i) for i, g in enumerate(candidates)]
    scored = [(v, i) for v, i in scored if not math.isnan(v)]
    best = None
    if scored:
        pick = max if direction == 'maximize' else min
        best = candidates[pick(scored)[1]]
    group_axes = [a for a in axes if a != seed_axis]
    percent = lambda leaf: bool(re.search(r'accuracy|f1', leaf))
    lines = [
        f'Sweep `{os.path.basename(os.path.normpath(sweep_dir))}`: {len(rows)} points, '
        f'{sum(r["status"] == "done" for r in rows)} done, {sum(r["status"] == "failed" for r in rows)} failed; '
        f'mean ± std over `{seed_axis}` (n = seeds); accuracy and F1 in %; ★ best {objective}'
        + (f' on {split}' if split else '')
        + '.',
        '',
        '| ' + ' | '.join(group_axes + ['split', 'evaluator'] + leaves + ['best']) + ' |',
        '|' + '---|' * (len(group_axes) + 3 + len(leaves)),
    ]
    for g in groups:
        cells = [str(g['axes'].get(a, '')) for a in group_axes] + [g['split'], g['evaluator']]
        cells += [_cell(*summary(g['entries'], leaf), percent(leaf)) for leaf in leaves]
        lines.append('| ' + ' | '.join(cells + ['★' if g is best else '']) + ' |')
    if pivot:
        lines += ['', *pivot_table(candidates, pivot, objective, [a for a in group_axes if a != pivot], split)]
    failed = [r for r in rows if r['status'] != 'done']
    if failed:
        lines += ['', 'Not done:', '']
        lines += [f'- `{r["point"]}`: {r["status"]}' + (f' — {r["error"]}' if r['error'] else '') for r in failed]
    with open(paths[1], 'w') as f:
        f.write('\n'.join(lines) + '\n')

    for axis in group_axes:
        values = {g['axes'][axis] for g in groups if _number(g['axes'].get(axis)) is not None}
        if len(values) >= 2 and objective:
            path = os.path.join(sweep_dir, f'plot_{re.sub(r"[^A-Za-z0-9_.-]", "_", axis)}.png')
            plot(candidates, axis, objective, path)
            paths.append(path)
    return paths


def pivot_table(groups: list, axis: str, objective: str, other_axes: list, split: str) -> list:
    """Markdown lines: the objective per row (the other axes + evaluator) and value of `axis`;
    rows without the axis (e.g. zero-shot) fill the column '—'."""
    values = sorted({g['axes'][axis] for g in groups if _number(g['axes'].get(axis)) is not None})
    other_axes = [a for a in other_axes if any(a in g['axes'] for g in groups)]  # no empty columns
    table = {}
    for g in groups:
        key = tuple(str(g['axes'].get(a, '')) for a in other_axes) + (g['evaluator'],)
        x = _number(g['axes'].get(axis))
        table.setdefault(key, {})[x] = _cell(
            *summary(g['entries'], objective), bool(re.search(r'accuracy|f1', objective))
        )
    columns = [None] + values
    lines = [
        f'{objective}' + (f' on {split}' if split else '') + f' by {axis} (— : no {axis})',
        '',
        '| ' + ' | '.join(other_axes + ['evaluator', '—'] + [f'{axis}={v}' for v in values]) + ' |',
        '|' + '---|' * (len(other_axes) + 1 + len(columns)),
    ]
    for key, cells in table.items():
        lines.append('| ' + ' | '.join(list(key) + [cells.get(c, '') for c in columns]) + ' |')
    return lines


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def plot(groups: list, axis: str, objective: str, path: str):
    """The objective vs `axis`, one line per combination of the other axes and evaluator."""
    series = {}
    for g in groups:
        mean, std, n = summary(g['entries'], objective)
        if math.isnan(mean):
            continue
        others = [f'{v}' for k, v in g['axes'].items() if k != axis]
        splits = {h['split'] for h in groups}
        evaluator = [g['evaluator']] if g['evaluator'] not in ['task', *others] else []
        label = ' '.join(others + evaluator + ([g['split']] if len(splits) > 1 else []))
        x = _number(g['axes'].get(axis))
        series.setdefault(label, []).append((x, mean, 0.0 if math.isnan(std) else std))
    xs = [x for points in series.values() for x, _, _ in points if x is not None]
    fig = Figure(figsize=(10, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    log = bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 10
    for i, (label, points) in enumerate(sorted(series.items())):
        color = colormaps['tab20'](2 * i % 20 + i // 10 % 2)  # 10 dark colours, then their light shades
        flat = [p for p in points if p[0] is None]
        points = sorted(p for p in points if p[0] is not None)
        if points:
            x, y, e = zip(*points)
            ax.errorbar(x, y, yerr=e, marker='o', capsize=3, color=color, label=label)
        for _, y, _ in flat:  # rows without this axis (e.g. zero-shot): a reference line
            ax.axhline(y, ls='--', color=color, label=label)
    if log:
        ax.set_xscale('log')
    if xs and len(set(xs)) <= 12:  # the swept values themselves as ticks
        ax.set_xticks(sorted(set(xs)), [f'{x:g}' for x in sorted(set(xs))])
        ax.minorticks_off()
    ax.set(xlabel=axis, ylabel=objective, title=f'{objective} vs {axis}')
    if len(series) <= 16:
        ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))  # outside: never over the data
    fig.tight_layout()
    fig.savefig(path, dpi=110)
