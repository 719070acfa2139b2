"""The config error type and value checks every component uses: a leaf module (imports
nothing from research), so tasks, evaluators, models, the optimizer and the mesh can declare
and check their own config fields without importing research.config.
"""

import os
import traceback


class ConfigError(ValueError):
    """A config problem a user must fix; the message is one line naming key and fix."""


def need(ok, message: str):
    """Raises ConfigError(message) unless `ok`."""
    if not ok:
        raise ConfigError(message)


def check_type(name, value, like):
    """`value` converted to the type of `like` (int -> float, list -> tuple), or a ConfigError."""
    if isinstance(like, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(like, bool)
    elif isinstance(like, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif isinstance(like, (tuple, list)):
        ok = isinstance(value, (tuple, list))
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(like))
    if not ok:
        raise ConfigError(f'{name} must be {type(like).__name__}, got {type(value).__name__} {value!r}')
    return value


def choice(name: str, value, options):
    """Raises a ConfigError naming the options unless value is one of them."""
    need(value in options, f'{name}={value!r}: use one of {tuple(options)}')


def located(error: BaseException, path: str) -> str:
    """`path:line` where the user's file `path` raised `error` (its last frame there; a syntax
    error: the offending line), or just `path` when the error came from elsewhere."""
    if isinstance(error, SyntaxError) and os.path.abspath(error.filename or '') == os.path.abspath(path):
        return f'{path}:{error.lineno}'
    own = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)]
    return f'{path}:{own[-1].lineno}' if own else path
