"""Classification metrics from a confusion matrix, shared by the task loss and the evaluators."""

import numpy as np


def confusion(labels, predictions, num_classes: int) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return cm


def accuracy_and_macro_f1(cm) -> dict:
    """Accuracy and macro-F1 of a confusion matrix; classes absent from both the truth and the
    predictions are left out of the macro average (their F1 is undefined)."""
    cm = np.asarray(cm, np.float64)
    n = cm.sum()
    if n == 0:
        return {'accuracy': float('nan'), 'macro_f1': float('nan')}
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return {'accuracy': float(tp.sum() / n), 'macro_f1': float(f1.mean())}
