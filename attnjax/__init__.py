"""attnjax: attention in sequence-to-sequence models, in JAX and Flax Linen."""

__version__ = "0.1.0"
