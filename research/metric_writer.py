"""Writes metrics to DIR/metrics.jsonl (one JSON object per event) and TensorBoard."""

import json
import os

import jax


class MetricWriter:
    """Process 0 writes; other processes' writers do nothing."""

    def __init__(self, workdir: str):
        self._active = jax.process_index() == 0
        if not self._active:
            return
        import tensorflow as tf  # TensorBoard event files; imported only where written

        self._tf = tf
        os.makedirs(workdir, exist_ok=True)
        self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
        self._tb = tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard'))

    def write(self, step: int, metrics: dict):
        """Appends one event {'step': step, name: value, …} and flushes."""
        if not self._active or not metrics:
            return
        values = {k: float(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({'step': int(step), **values}) + '\n')
        self._jsonl.flush()
        with self._tb.as_default(step=int(step)):
            for k, v in values.items():
                self._tf.summary.scalar(k, v)
        self._tb.flush()

    def close(self):
        if self._active:
            self._jsonl.close()
            self._tb.close()


def read_metrics(workdir: str) -> list:
    """All events of DIR/metrics.jsonl, in order."""
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]
