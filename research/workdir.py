"""A run's directory: checked, locked while a run uses it, and left clean when a run fails early;
its resolved config (config.json) and the models it starts from.

`owned(workdir)` wraps a training or evaluation run:
- the directory must be (or become) a writable directory, else one-line WorkdirError;
- `lock.json` names the owner (host, pid, start time) and a heartbeat refreshed while the run
  lives; a second run on the same workdir refuses, naming the owner. A lock whose process is
  gone (same host) or whose heartbeat stopped (STALE_SECONDS, any host) is reported and taken
  over. The protocol needs no atomic create or rename -- write, wait a few write times, read
  back -- so it works on object stores (`gs://…`, through etils.epath) as on local disks;
- a run that fails leaves no empty directory it created (files are never removed).
Only process 0 touches the lock; the other processes learn its outcome.
"""

import contextlib
import json
import os
import socket
import threading
import time
import uuid

import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils

from research.schema import ConfigError

LOCK = 'lock.json'
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0  # a lock not refreshed for this long belongs to a dead run


class WorkdirError(ValueError):
    """The workdir cannot be used; the message is one line naming the problem and the fix."""


def trained_config(workdir: str, task: str, tool: str):
    """The config.json of a training run in `workdir`, which must have trained `task` (for
    `python -m research.<tool>`)."""
    import ml_collections

    path = os.path.join(workdir, 'config.json')
    if not os.path.isfile(path):
        raise WorkdirError(f'{path} not found; is --workdir a training run directory?')
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if config.task != task:
        raise WorkdirError(f'{workdir} trained task {config.task!r}; research.{tool} needs a run of task {task!r}')
    return config


def load_trained(workdir: str, task: str, tool: str, step: int | None = None) -> tuple:
    """(config, task, vocab, checkpoint step, params) of a training run in `workdir` that
    trained `task` (for `python -m research.<tool>`): its config.json, the task and vocabulary
    built from it, and the params of checkpoint `step` (default: the latest readable one).
    Raises WorkdirError or FileNotFoundError with one line naming what is missing."""
    from research import checkpoint, tasks

    config = trained_config(workdir, task, tool)
    built = tasks.get(config)
    vocab = built.load_vocab()
    step, params = checkpoint.load_params(os.path.join(workdir, 'checkpoints'), step)
    return config, built, vocab, step, params


def prepare(workdir: str) -> bool:
    """Makes `workdir` if needed and checks it can be written; returns whether it was created."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f'--workdir {workdir} is a file, not a directory; pass a directory (new, or a run of ours)')
    created = not os.path.exists(workdir)
    probe = os.path.join(workdir, f'.write_test.{uuid.uuid4().hex}')
    try:
        os.makedirs(workdir, exist_ok=True)
        open(probe, 'w').close()
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(
            f'--workdir {workdir} cannot be written ({e.strerror}); pass a directory you can write'
        ) from None
    return created


def describe(owner: dict) -> str:
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(owner.get('started', 0)))
    return f'the run of pid {owner.get("pid")} on host {owner.get("host")} (started {started})'


def stale_reason(owner: dict, now: float, stale_after: float) -> str:
    """Why the lock of `owner` is stale, or '' if its run looks alive."""
    age = now - owner.get('heartbeat', 0)
    if age > stale_after:
        return f'no heartbeat for {age:.0f} s'
    if owner.get('host') == socket.gethostname():
        try:
            os.kill(int(owner.get('pid', -1)), 0)
        except ProcessLookupError:
            return 'its process is gone'
        except (PermissionError, ValueError, OverflowError):
            pass  # PermissionError: the pid exists (another user's process)
    return ''


class Lock:
    """Process 0's claim on a workdir (see the module docstring)."""

    def __init__(self, workdir: str, heartbeat: float = HEARTBEAT_SECONDS, stale_after: float = STALE_SECONDS):
        self.path = epath.Path(workdir) / LOCK
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.mine = None
        self._stop = threading.Event()
        self._thread = None

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError):  # half-written or garbled: whoever wrote it is not a live owner
            return {}

    def _write(self) -> float:
        start = time.perf_counter()
        self.mine['heartbeat'] = time.time()
        self.path.write_text(json.dumps(self.mine))
        return time.perf_counter() - start

    def acquire(self, log):
        owner = self.read()
        if owner is not None:
            reason = stale_reason(owner, time.time(), self.stale_after) if owner else 'it is unreadable'
            if not reason:
                raise WorkdirError(self._refusal(owner))
            log(f'taking over the lock of {describe(owner)}: {reason}')
        self.mine = dict(host=socket.gethostname(), pid=os.getpid(), started=time.time(), token=uuid.uuid4().hex)
        took = self._write()
        time.sleep(0.05 + 4 * took)  # a run that read "no lock" with us has written by now: the last write wins
        owner = self.read()
        if not owner or owner.get('token') != self.mine['token']:
            self.mine = None
            raise WorkdirError(self._refusal(owner or {}))
        self._thread = threading.Thread(target=self._beat, daemon=True, name='workdir-lock')
        self._thread.start()

    def _refusal(self, owner: dict) -> str:
        return (
            f'workdir {self.path.parent} is in use by {describe(owner)}; wait for it or stop it, or if that run is '
            f'gone, delete {self.path} and rerun'
        )

    def _beat(self):
        while not self._stop.wait(self.heartbeat):
            owner = self.read()
            if owner and owner.get('token') != self.mine['token']:
                print(f'warning: the lock of {self.path.parent} was taken over by {describe(owner)}', flush=True)
                return
            self._write()

    def release(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        owner = self.read()
        if self.mine and owner and owner.get('token') == self.mine['token']:
            self.path.unlink()


def remove_empty_dirs(workdir: str, created: bool):
    """Removes empty directories under `workdir` (and `workdir` itself if this run created it)."""
    for root, _, _ in sorted(os.walk(workdir), key=lambda w: -len(w[0])):
        if (root != workdir or created) and not os.listdir(root):
            os.rmdir(root)


@contextlib.contextmanager
def owned(workdir: str, log=print):
    """The workdir, prepared and locked for the duration of a run (see the module docstring)."""
    lock, created, error = Lock(workdir), False, ''
    if jax.process_index() == 0:
        try:
            created = prepare(workdir)
            lock.acquire(log)
        except WorkdirError as e:
            error = str(e)
    if jax.process_count() > 1:  # every process stops if process 0 could not take the workdir
        failed = multihost_utils.broadcast_one_to_all(np.int32(bool(error)))
        error = error or (f'workdir {workdir} is not usable (see process 0)' if failed else '')
    if error:
        raise WorkdirError(error)
    try:
        yield
    except BaseException:
        lock.release()
        if jax.process_index() == 0:
            remove_empty_dirs(workdir, created)
        raise
    lock.release()


def check_sources(config):
    """The models a run starts from exist (checked when the run starts: in a sweep, an earlier
    point may write them)."""
    source = config.init_from.removeprefix('hf:')
    if source and not os.path.exists(source):
        raise ConfigError(
            f'config.init_from={config.init_from!r}: {source} does not exist; give a workdir of ours, a checkpoint '
            f"dir, or 'hf:PATH' to a Hugging Face BERT safetensors file or directory"
        )
    if config.resume and not os.path.isdir(config.resume):
        raise ConfigError(
            f'config.resume={config.resume!r} is not a directory; give a workdir or checkpoint dir to resume from'
        )


def save_config(config, workdir: str):
    """Writes the resolved config as JSON (readable, diffable) to workdir/config.json. A
    different config already there (a resumed run with changed fields) is kept as config.N.json."""
    path = os.path.join(workdir, 'config.json')
    text = json.dumps(config.to_dict(), indent=2, default=list)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
        n = 1
        while os.path.exists(os.path.join(workdir, f'config.{n}.json')):
            n += 1
        os.replace(path, os.path.join(workdir, f'config.{n}.json'))
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
