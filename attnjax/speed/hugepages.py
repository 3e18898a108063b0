"""Transparent huge pages for the `attnjax` command (Linux with glibc 2.35 or later).

XLA:CPU allocates a program's buffers with malloc at every run of it, and glibc serves
anything above 32 MiB with a fresh `mmap`: the kernel then faults that memory in 4 KiB page
by page the first time the step writes it, which makes a fresh large buffer several times
slower to write than a reused one. glibc's tunable `glibc.malloc.hugetlb=1` makes malloc
ask the kernel for transparent huge pages (`madvise`), 2 MiB at a time
(`experiments/speed/huge_pages.md` measures what that buys).

Tunables are read when a process starts, so the `attnjax` command re-executes itself once
with the tunable added to GLIBC_TUNABLES (`attnjax/__main__.py`), before it imports anything
else; `cli.main` called from Python never re-executes. Set ATTNJAX_HUGEPAGES=0 to
run without it. Nothing happens off Linux, with another C library or an older glibc, when
the kernel's THP mode is not `madvise` (with `always` every large mapping gets huge pages
already; with `never`, none can), or when GLIBC_TUNABLES already sets the tunable.
"""

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb"
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def _thp_mode(path: str = THP_MODE) -> str | None:
  """The kernel's transparent-huge-page mode ('always', 'madvise', 'never'), or None."""
  try:
    with open(path) as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find("["), text.find("]")
  return text[start + 1:end] if 0 <= start < end else None


def _glibc_at_least(major: int, minor: int) -> bool:
  library, version = platform.libc_ver()
  try:
    return library == "glibc" and tuple(map(int, version.split(".")[:2])) >= (major, minor)
  except ValueError:
    return False


def wanted(environ=os.environ, thp_mode=None) -> bool:
  """Whether re-executing with the tunable would change anything here."""
  if environ.get("ATTNJAX_HUGEPAGES", "1") == "0" or TUNABLE in environ.get("GLIBC_TUNABLES", ""):
    return False
  mode = _thp_mode() if thp_mode is None else thp_mode
  return sys.platform == "linux" and _glibc_at_least(2, 35) and mode == "madvise"


def environment(environ=os.environ) -> dict:
  """`environ` with the tunable appended to GLIBC_TUNABLES (':'-separated)."""
  tunables = environ.get("GLIBC_TUNABLES")
  return dict(environ, GLIBC_TUNABLES=f"{tunables}:{TUNABLE}=1" if tunables else f"{TUNABLE}=1")


def active(environ=os.environ, thp_mode=None) -> bool:
  """Whether this process's large allocations get transparent huge pages."""
  mode = _thp_mode() if thp_mode is None else thp_mode
  tunables = environ.get("GLIBC_TUNABLES", "").split(":")
  return mode == "always" or (mode == "madvise" and f"{TUNABLE}=1" in tunables)


def reexec_if_wanted() -> None:
  """Replace this process by the same command line with huge pages on, or return."""
  if not wanted() or not sys.executable:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment())
  except OSError:
    return  # run on, without huge pages
