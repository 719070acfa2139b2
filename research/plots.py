"""Plots written into the workdir at the end of a run."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from research.metric_writer import read_metrics


def training_curves(workdir: str, path: str, headline: str, baseline_name: str = ''):
    """Train and evaluation loss vs step (left) and the headline metric with its baseline
    (right), from the whole of workdir/metrics.jsonl (a resumed run included).

    A resumed run logs some steps twice; the last value logged for a step wins.
    """
    events = read_metrics(workdir)

    def series(name):
        points = {e['step']: e[name] for e in events if name in e}
        steps = sorted(points)
        return steps, [points[s] for s in steps]

    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(*series('train/loss'), label='train')
    eval_loss = headline.rpartition('/')[0] + '/loss'
    if headline:
        ax1.plot(*series(eval_loss), 'o-', label=eval_loss.rpartition('/')[0])
        ax2.plot(*series(headline), 'o-', label='model')
    baseline = series(baseline_name)[1] if baseline_name else []
    if baseline:
        ax2.axhline(baseline[-1], color='gray', ls='--', label=f'{baseline_name} ({baseline[-1]:.3g})')
    ax1.set(xlabel='step', ylabel='cross-entropy (nats)', title='loss')
    ax1.legend()
    ax2.set(
        xlabel='step',
        ylabel=headline,
        title=headline or 'no task evaluator',
        yscale='log' if 'perplexity' in headline else 'linear',
    )
    if headline:
        ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def confusion_matrix(matrix, labels, path: str, title: str = 'confusion matrix'):
    """A labelled heat map of counts, rows = true class, columns = predicted class."""
    fig = Figure(figsize=(1.2 + 0.6 * len(labels), 1 + 0.55 * len(labels)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap='Blues')
    fig.colorbar(image, ax=ax)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel='predicted', ylabel='true', title=title)
    ax.set_xticklabels(labels, rotation=45, ha='right')
    ax.set_yticklabels(labels)
    high = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f'{int(v)}', ha='center', va='center', color='white' if v > high else 'black')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
