"""Paths a command will write, checked before any work: a run must not decode for an hour and
then fail on a folder that is missing, read-only or a file, or on a format nothing writes.

    output_file("out/align.png", "--out", formats=viz.image_formats())
    output_dir("runs/x", "--workdir")

A missing folder is created; anything else that would fail later is an `OutputError` now.
"""

import os
import pathlib
import tempfile

from attnjax.errors import OutputError


def _writable_dir(folder: pathlib.Path, what: str) -> None:
  """`folder` exists (created if missing) and a file can be made in it."""
  if folder.exists() and not folder.is_dir():
    raise OutputError(f"{what}: {folder} is a file, not a folder")
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise OutputError(f"{what}: cannot create the folder {folder} ({err.strerror or err})") from None
  try:  # os.access says yes to root on a read-only filesystem; making a file does not
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".attnjax-write-check-"):
      pass
  except OSError as err:
    raise OutputError(f"{what}: cannot write in the folder {folder} ({err.strerror or err})") from None


def output_file(path, what: str, formats=None) -> pathlib.Path:
  """`path` can be written as a file: its folder exists or is created and takes new files, it
  is not a folder, an existing file there can be replaced, and its extension is one of
  `formats` (without dots) when given."""
  path = pathlib.Path(path)
  if path.is_dir() or str(path).endswith(os.sep):
    raise OutputError(f"{what}={path} is a folder; give a file name")
  if formats is not None:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
      kind = f"'.{suffix}' files" if suffix else "a file without an extension"
      raise OutputError(f"{what}={path}: cannot write {kind}; use one of "
                        f"{', '.join('.' + f for f in sorted(formats))}")
  _writable_dir(path.parent, what)
  if path.exists() and not os.access(path, os.W_OK):
    raise OutputError(f"{what}={path} exists and cannot be replaced (read-only)")
  return path


def output_dir(path, what: str) -> pathlib.Path:
  """`path` is, or can be made, a folder that takes new files."""
  path = pathlib.Path(path)
  _writable_dir(path, f"{what}={path}")
  return path
