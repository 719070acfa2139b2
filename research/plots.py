"""Plots written into the workdir at the end of a run."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def loss_curve(events: list, path: str, baseline: float | None = None):
    """Train and validation loss vs step (left) and validation perplexity (right).

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
    ax1.set(xlabel='step', ylabel='cross-entropy (nats/word)', title='loss')
    ax1.legend()
    ax2.plot(*series('val/perplexity'), 'o-', label='model')
    if baseline:
        ax2.axhline(baseline, color='gray', ls='--', label=f'unigram baseline ({baseline:.0f})')
    ax2.set(xlabel='step', ylabel='perplexity', title='validation perplexity', yscale='log')
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
