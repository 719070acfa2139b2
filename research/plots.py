"""Plots written into the workdir at the end of a run."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def training_curves(events: list, path: str, headline: str, baseline_name: str = '',
                    baseline: float | None = None):
    """Train and validation loss vs step (left) and the task's headline metric (right).

    A resumed run logs some steps twice; the last value logged for a step wins.
    """
    def series(name):
        points = {e['step']: e[name] for e in events if name in e}
        steps = sorted(points)
        return steps, [points[s] for s in steps]

    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(*series('train/loss'), label='train')
    ax1.plot(*series('val/loss'), 'o-', label='validation')
    ax1.set(xlabel='step', ylabel='cross-entropy (nats)', title='loss')
    ax1.legend()
    ax2.plot(*series(headline), 'o-', label='model')
    if baseline is not None:
        ax2.axhline(baseline, color='gray', ls='--', label=f'{baseline_name} ({baseline:.3g})')
    ax2.set(xlabel='step', ylabel=headline, title=headline,
            yscale='log' if 'perplexity' in headline else 'linear')
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
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel='predicted', ylabel='true',
           title=title)
    ax.set_xticklabels(labels, rotation=45, ha='right')
    ax.set_yticklabels(labels)
    high = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f'{int(v)}', ha='center', va='center', color='white' if v > high else 'black')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
