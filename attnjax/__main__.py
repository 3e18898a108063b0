"""The `attnjax` command (also `python -m attnjax`).

Huge pages come first: the re-execution of `hugepages.py` happens here, before the command
line's modules (absl, ml_collections, JAX) are imported, so the first process costs nothing
but an interpreter start-up.
"""

import sys

from attnjax.speed import hugepages


def main() -> int:
  hugepages.reexec_if_wanted()
  from attnjax import cli
  return cli.main(sys.argv)


if __name__ == "__main__":
  sys.exit(main())
