"""Progress that fits where it is read: a tqdm bar on a terminal, plain lines elsewhere.

A bar redraws itself with carriage returns; in a file (a SLURM log, CI, `| tee`) that is one
line of a thousand frames. When stderr is not a terminal, `Progress` prints nothing per step
and `log` writes one line (step, the caller's figures, elapsed time and ETA) instead.
"""

import sys
import time

from tqdm.auto import tqdm


def is_terminal() -> bool:
  return sys.stderr.isatty()


def duration(seconds: float) -> str:
  """3725 -> '1:02:05', 65 -> '1:05'."""
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
  """Steps `initial`..`total`; silent unless `enabled`; a bar only on a terminal."""

  def __init__(self, total: int, initial: int = 0, enabled: bool = True, unit: str = "step"):
    self.total, self.initial, self.enabled, self.unit = total, initial, enabled, unit
    self.start = time.perf_counter()
    self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True) \
        if enabled and is_terminal() else None

  def update(self, n: int = 1) -> None:
    if self.bar is not None:
      self.bar.update(n)

  def log(self, step: int, **figures: str) -> None:
    """The bar's postfix on a terminal; otherwise one line `<unit> N/T  k v ...  elapsed  eta`."""
    if not self.enabled:
      return
    if self.bar is not None:
      self.bar.set_postfix(**figures)
      return
    elapsed = time.perf_counter() - self.start
    done = step - self.initial
    eta = elapsed / done * (self.total - step) if done > 0 else 0.0
    parts = [f"{self.unit} {step}/{self.total}"] + [f"{k} {v}" for k, v in figures.items()]
    print("  ".join(parts + [f"elapsed {duration(elapsed)}", f"eta {duration(eta)}"]), flush=True)

  def write(self, line: str) -> None:
    """A line that does not break the bar (printed even when the bar is disabled)."""
    if self.bar is not None:
      tqdm.write(line)
    else:
      print(line, flush=True)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
