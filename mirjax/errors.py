"""mirjax's error types: what a user can fix (a setting, a folder, a file) as opposed to a
programming error. `python -m mirjax.main` prints a `MirjaxError` as one line (its message
says what to do) and lets every other exception through with its traceback."""


class MirjaxError(Exception):
  """A user mistake or bad input; the message names the setting or file and the remedy."""


class ConfigError(MirjaxError, ValueError):
  """A config value that cannot work (checked before any data is loaded)."""


class DataError(MirjaxError, ValueError):
  """A dataset folder, file or split that cannot be used as it is."""


class WorkdirError(MirjaxError, RuntimeError):
  """A --workdir that is in use, missing, not a folder, or holds something this run cannot use."""
