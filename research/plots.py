"""Plots written into the workdir at the end of a run."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def loss_curve(events: list, path: str, baseline: float | None = None):
    """Train and validation loss vs step (left) and validation perplexity (right)."""
    def series(name):
        pts = [(e['step'], e[name]) for e in events if name in e]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
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
    plt.close(fig)
