"""Writes metrics to DIR/metrics.jsonl (one JSON object per event) and TensorBoard."""

import json
import os

import jax


class MetricWriter:
    """Process 0 writes; other processes' writers do nothing. Files are opened at the first
    write, so a run that fails before logging anything leaves none."""

    def __init__(self, workdir: str):
        self._active = jax.process_index() == 0
        self._workdir = workdir
        self._jsonl = self._tb = self._summary = None

    def write(self, step: int, metrics: dict):
        """Appends one event {'step': step, name: value, …} and flushes."""
        if not self._active or not metrics:
            return
        if self._jsonl is None:
            import tensorflow as tf  # TensorBoard event files; imported only where written

            os.makedirs(self._workdir, exist_ok=True)
            self._jsonl = open(os.path.join(self._workdir, 'metrics.jsonl'), 'a')
            self._tb = tf.summary.create_file_writer(os.path.join(self._workdir, 'tensorboard'))
            self._summary = tf.summary
        values = {k: float(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({'step': int(step), **values}) + '\n')
        self._jsonl.flush()
        with self._tb.as_default(step=int(step)):
            for k, v in values.items():
                self._summary.scalar(k, v)
        self._tb.flush()

    def close(self):
        if self._jsonl is not None:
            self._jsonl.close()
            self._tb.close()


def read_metrics(workdir: str) -> list:
    """All events of DIR/metrics.jsonl, in order."""
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]
