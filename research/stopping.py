"""Stopping training cleanly, and saves on a clock.

SIGTERM (a cluster's preemption notice) or SIGINT (Ctrl-C) asks the trainer to stop with a
committed checkpoint; a second signal exits at once. Processes must stop at the same step.
They agree inside the train step itself: every batch carries a `control` column (this
process's flags: stop asked, save due by the clock) whose max over the global batch comes
back with the step's metrics. The loop reads step s-1's answer after dispatching step s --
one step stays in flight, and no second collective program ever runs beside the train step
(on CPU, gloo pairs the collectives of concurrently running programs wrongly). A signal
during step s therefore stops every process after step s+1.
"""

import os
import signal
import sys
import threading
import time

import numpy as np

FLAGS = ('stop', 'save')


class Stopped(Exception):
    """Training stopped on a signal; the checkpoint of `step` is committed."""

    def __init__(self, signal_name: str, step: int, where: str):
        super().__init__(
            f'stopped by {signal_name} at step {step}: checkpoint saved in {where}; run the same command to resume'
        )
        self.step = step


class Stop:
    """Context manager: catches SIGTERM/SIGINT while training (see the module docstring)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, checkpoint_minutes: float = 0.0):
        self.received = ''  # name of the first signal
        self.period = checkpoint_minutes * 60
        self.last_save = time.monotonic()
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            # An ignored signal stays ignored (a shell script's background job ignores SIGINT).
            wanted = [s for s in self.SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
            self._previous = {s: signal.signal(s, self._handle) for s in wanted}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received:
            print(f'{name} again: exiting now, without a checkpoint of this step', file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.received = name
        print(
            f'{name}: stopping after this step with a checkpoint (send it again to exit now)',
            file=sys.stderr,
            flush=True,
        )

    def control(self, rows: int) -> np.ndarray:
        """This process's flags as the batch's `control` column [rows, len(FLAGS)]."""
        flags = [bool(self.received), 0 < self.period <= time.monotonic() - self.last_save]
        return np.tile(np.array(flags, np.int32), (rows, 1))

    def saved(self):
        self.last_save = time.monotonic()


def decide(control) -> dict:
    """{'stop': bool, 'save': bool} from a train step's `control` metric (the same on every process)."""
    return dict(zip(FLAGS, map(bool, np.asarray(control))))
