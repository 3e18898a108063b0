"""The project's one base error: what a user caused and can fix, said in one line.

Every error the command line turns into a single `attnjax <command>: error: ...` line derives
from `Error` (and from the builtin it refines, so `except ValueError` still catches a bad
value); anything else is a bug and keeps its traceback.
"""

import errno

# What a filesystem without locks answers flock with (some network filesystems, Lustre
# without -o flock): the workdir lock and the data dir's prepare lock then go on unguarded.
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class Error(Exception):
  """A failure the message explains: what was wrong, where, and how to fix it."""


class UsageError(Error, ValueError):
  """Flags or arguments that do not fit together."""


class MismatchError(Error, ValueError):
  """Inputs that describe each other but disagree: line counts, indices past a sentence's end."""


class OutputError(Error, OSError):
  """A path that would be written cannot be; found before any work is done."""


class WorkdirBusy(Error, RuntimeError):
  """Another run holds the workdir's lock."""
