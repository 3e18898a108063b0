"""Interventions on the attention: does a model use the alignment it computes?

A model built with `intervention=Intervention(kind, ...)` replaces its cross-attention
distribution, at every target step, before the context is mixed from it, both when scoring
teacher-forced and when decoding:

  uniform   equal weight on every real source position;
  permute   the model's own weights permuted at random over the real source positions: a
            fresh permutation for every sentence, target position and head, drawn from
            `seed` by a counter-based hash, so that decoding and teacher forcing draw the same;
  gold      the weights given as `gold` [B, T, S] to the model's `__call__` (teacher forcing
            only): a row that sums to 1 over the real positions replaces the model's row, an
            all-zero row keeps it (a target piece without a gold link); for the Transformer,
            in every head of the decoder layers `layers` (all when empty).

Heads are switched off (Michel et al. 2019) by gates rather than by a kind: the optional
variable collection 'gates', one [heads] vector per attention module of the Transformer
(`gates`), multiplies each head's output before the output projection. Gates of one leave the
model unchanged, a gate of zero removes the head, and the loss's gradient with respect to the
gates is Michel et al.'s head importance.
"""

import dataclasses

import jax
import jax.numpy as jnp

from attnjax.models.layers import _mix

KINDS = ('uniform', 'permute', 'gold')
ATTENTION_KINDS = ('encoder', 'decoder', 'cross')  # self-attention of each stack, and cross


@dataclasses.dataclass(frozen=True)
class Intervention:
  """What replaces the cross-attention (see the module's docstring)."""

  kind: str
  seed: int = 0
  layers: tuple[int, ...] = ()  # gold, Transformer: the decoder layers it replaces (all if empty)

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'intervention {self.kind!r} is not one of {", ".join(KINDS)}')

  def applies_to(self, layer: int) -> bool:
    return self.kind != 'gold' or not self.layers or layer in self.layers


def _random_bits(seed: int, shape, step):
  """uint32 hash of (seed, batch row, [head,] target position, source position) for weights
  of `shape` [B, (H,) T, S]; `step` [B, T] gives each row's absolute target positions."""
  index = [jax.lax.broadcasted_iota(jnp.uint32, shape, axis) for axis in range(len(shape))]
  target = jnp.broadcast_to(
      (step[:, None] if len(shape) == 4 else step).astype(jnp.uint32)[..., None], shape)
  bits = _mix(index[0] ^ jnp.uint32(seed & 0xFFFFFFFF))
  for axis in index[1:-2]:  # the head axis, when there is one
    bits = _mix(bits ^ axis)
  return _mix(_mix(bits ^ target) ^ index[-1])


def replace(weights, mask, intervention: Intervention, step, gold=None):
  """The attention `intervention` puts in place of `weights`.

  weights [B, T, S] (one head) or [B, H, T, S], in float32; mask [B, S], True at the real
  source positions; step [B, T], the target position of each query (permute); gold
  [B, T, S] (gold).
  """
  heads = weights.ndim == 4
  real = mask[:, None, None, :] if heads else mask[:, None, :]
  if intervention.kind == 'uniform':
    real = jnp.broadcast_to(real, weights.shape).astype(weights.dtype)
    return real / jnp.maximum(jnp.sum(real, axis=-1, keepdims=True), 1.0)
  if intervention.kind == 'permute':
    bits = _random_bits(intervention.seed, weights.shape, step)
    real = jnp.broadcast_to(real, weights.shape)
    # The real positions in a random order, then the padding; and in their own order, then
    # the padding: real position p, k-th in its own order, takes the weight of the k-th drawn.
    drawn = jnp.argsort(jnp.where(real, bits, jnp.uint32(0xFFFFFFFF)), axis=-1, stable=True)
    rank = jnp.argsort(jnp.argsort(~real, axis=-1, stable=True), axis=-1)
    shuffled = jnp.take_along_axis(weights, drawn, axis=-1)
    return jnp.where(real, jnp.take_along_axis(shuffled, rank, axis=-1), 0.0)
  if gold is None:
    raise ValueError('the gold intervention needs the gold attention: gold [B, T, S] (teacher forcing only)')
  gold = gold.astype(weights.dtype)
  if heads:
    gold = gold[:, None]
  return jnp.where(jnp.sum(gold, axis=-1, keepdims=True) > 0, gold, weights)


def gates(num_encoder_layers: int, num_decoder_layers: int, num_heads: int, off=None):
  """The 'gates' collection of a Transformer: every head on (1.0), except those in `off`, a
  dict of attention kind ('encoder', 'decoder', 'cross') -> [(layer, head), ...] (0.0)."""
  matrices = {kind: jnp.ones((num_encoder_layers if kind == 'encoder' else num_decoder_layers,
                              num_heads), jnp.float32) for kind in ATTENTION_KINDS}
  for kind, heads in (off or {}).items():
    if kind not in ATTENTION_KINDS:
      raise ValueError(f'attention kind {kind!r} is not one of {", ".join(ATTENTION_KINDS)}')
    for layer, head in heads:
      if not (0 <= layer < matrices[kind].shape[0] and 0 <= head < num_heads):
        raise ValueError(f'{kind} head {layer}.{head} does not exist: the model has '
                         f'{matrices[kind].shape[0]} layers of {num_heads} heads')
      matrices[kind] = matrices[kind].at[layer, head].set(0.0)
  return to_tree(matrices)


def to_tree(matrices: dict) -> dict:
  """{'encoder', 'decoder', 'cross': [layers, heads]} -> the 'gates' collection's tree."""
  tree = {}
  for layer, row in enumerate(matrices['encoder']):
    tree[f'encoder_layers_{layer}'] = {'self_attention': {'gate': row}}
  for layer, (own, cross) in enumerate(zip(matrices['decoder'], matrices['cross'])):
    tree[f'decoder_layers_{layer}'] = {'self_attention': {'gate': own}, 'cross_attention': {'gate': cross}}
  return tree


def to_matrices(tree: dict) -> dict:
  """The inverse of `to_tree`: {'encoder', 'decoder', 'cross': [layers, heads]}."""
  def stack(prefix, module):
    rows = sorted((int(name.rsplit('_', 1)[1]), value[module]['gate'])
                  for name, value in tree.items() if name.startswith(prefix))
    return jnp.stack([row for _, row in rows])
  return {'encoder': stack('encoder_layers_', 'self_attention'),
          'decoder': stack('decoder_layers_', 'self_attention'),
          'cross': stack('decoder_layers_', 'cross_attention')}


def from_spec(spec: str, seed: int = 0) -> tuple[Intervention | None, dict | None]:
  """(intervention, heads) from the command line's `--intervene`: `uniform`, `permute`,
  `gold` or `gold:L,L` (the Transformer's decoder layers), or `heads:KIND:L.H,L.H` (KIND one
  of encoder, decoder, cross; layer and head from 0), which switches those heads off."""
  kind, _, rest = spec.partition(':')
  if kind in ('uniform', 'permute') and not rest:
    return Intervention(kind, seed), None
  if kind == 'gold':
    try:
      layers = tuple(int(l) for l in rest.split(',')) if rest else ()
    except ValueError:
      raise ValueError(f'--intervene={spec}: want gold or gold:L,L (decoder layers from 0)') from None
    return Intervention('gold', seed, layers), None
  if kind == 'heads':
    which, _, heads = rest.partition(':')
    if which not in ATTENTION_KINDS or not heads:
      raise ValueError(f'--intervene={spec}: want heads:KIND:L.H,L.H with KIND one of '
                       f'{", ".join(ATTENTION_KINDS)}, e.g. heads:cross:0.1,1.3')
    try:
      pairs = [tuple(int(x) for x in h.split('.')) for h in heads.split(',')]
    except ValueError:
      pairs = []
    if not pairs or any(len(p) != 2 for p in pairs):
      raise ValueError(f'--intervene={spec}: heads are LAYER.HEAD, e.g. heads:cross:0.1,1.3')
    return None, {which: pairs}
  raise ValueError(f'--intervene={spec}: want uniform, permute, gold[:L,L] or heads:KIND:L.H,...')


def describe(intervention: Intervention | None, heads: dict | None) -> str:
  """A short name for files and tables: `permute-seed0`, `gold`, `heads-cross-0.1-1.3`."""
  if heads:
    return '+'.join(f'heads-{kind}-' + '-'.join(f'{l}.{h}' for l, h in sorted(pairs))
                    for kind, pairs in sorted(heads.items()))
  if intervention.kind == 'permute':
    return f'permute-seed{intervention.seed}'
  if intervention.kind == 'gold' and intervention.layers:
    return 'gold-layers' + '.'.join(map(str, intervention.layers))
  return intervention.kind
