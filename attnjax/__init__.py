"""attnjax: attention in sequence-to-sequence models, in JAX and Flax Linen."""

__version__ = "0.1.0"


def load(workdir, step: int | None = None):
  """A trained workdir for a notebook: `.translate(sentences, beam=)`, `.alignments(...)`,
  `.evaluate(pairs)` (`attnjax/infer/trained.py`). Imported on use, so `import attnjax` stays light."""
  from attnjax.infer.trained import load as load_workdir
  return load_workdir(workdir, step)
