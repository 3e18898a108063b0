"""The Transformer: causal decoding, padding-invariant encoding, positions, shared embeddings."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax.config import transformer_model
from attnjax.models import build
from attnjax.models.transformer import sinusoidal_positions
from attnjax.tokens import PAD_ID
from tests.helpers import random_variables

BASE = {**transformer_model('tiny').to_dict(), 'd_model': 16, 'd_ff': 24, 'num_decoder_layers': 2,
        'attention_dropout': 0.1, 'share_embeddings': False, 'max_len': 8}
SRC = jnp.array([[5, 6, 7, 2, 0], [4, 5, 6, 7, 2], [9, 2, 0, 0, 0]], jnp.int32)
TGT_IN = jnp.array([[1, 5, 6, 7, 8], [1, 4, 4, 5, 6], [1, 8, 9, 0, 0]], jnp.int32)
PADDED_SRC = jnp.pad(SRC, ((0, 0), (0, 3)), constant_values=PAD_ID)
CHANGED = 2  # the target position whose token the causality test changes


def make(**overrides):
  cfg = ml_collections.ConfigDict({**BASE, **overrides})
  vocab = 17 if cfg.share_embeddings else 13
  return build(cfg, vocab, 17)


@pytest.mark.parametrize('overrides', [
    dict(),
    dict(norm='post', positions='learned', share_embeddings=True),
], ids=['pre-sinusoidal', 'post-learned-shared'])
def test_causal_and_blind_to_source_padding(overrides):
  model = make(**overrides)
  variables = random_variables(model, SRC, TGT_IN)
  changed_tgt = TGT_IN.at[:, CHANGED].set(11)

  @jax.jit
  def run():
    apply = lambda src, tgt: model.apply(variables, src, tgt, mutable=['intermediates'])
    return apply(SRC, TGT_IN), apply(SRC, changed_tgt), apply(PADDED_SRC, TGT_IN)

  (logits, inter), (changed, _), (padded, padded_inter) = run()
  np.testing.assert_allclose(changed[:, :CHANGED], logits[:, :CHANGED], atol=1e-6)
  assert not np.allclose(changed[:, CHANGED:], logits[:, CHANGED:])
  np.testing.assert_allclose(padded, logits, atol=1e-5)

  self_attention = inter['intermediates']['decoder_self_attention'][0]  # [B, T, L, H, T]
  future = np.triu(np.ones((TGT_IN.shape[1],) * 2, bool), k=1)[None, :, None, None, :]
  np.testing.assert_array_equal(np.asarray(self_attention) * future, 0.0)
  source_pad = np.asarray(PADDED_SRC == PAD_ID)[:, None, None, None, :]
  for name in ('cross_attention', 'encoder_self_attention'):
    weights = padded_inter['intermediates'][name][0]  # [B, T or S, L, H, S]
    np.testing.assert_array_equal(np.asarray(weights) * source_pad, 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_sinusoidal_positions_follow_the_formula():
  table = sinusoidal_positions(jnp.arange(6), 8)  # [6, 8]
  for pos in range(6):
    for i in range(4):
      angle = pos / 10000 ** (2 * i / 8)
      np.testing.assert_allclose(table[pos, 2 * i], math.sin(angle), atol=1e-6)
      np.testing.assert_allclose(table[pos, 2 * i + 1], math.cos(angle), atol=1e-6)


def test_shared_embeddings_use_one_matrix():
  shared = jax.eval_shape(make(share_embeddings=True).init, jax.random.key(0), SRC, TGT_IN)
  separate = jax.eval_shape(make().init, jax.random.key(0), SRC, TGT_IN)
  assert {'tgt_embed', 'projection'} <= set(separate['params'])
  assert not {'tgt_embed', 'projection'} & set(shared['params'])


def test_norm_placement():
  pre = jax.eval_shape(make(norm='pre').init, jax.random.key(0), SRC, TGT_IN)['params']
  post = jax.eval_shape(make(norm='post').init, jax.random.key(0), SRC, TGT_IN)['params']
  assert {'encoder_norm', 'decoder_norm'} <= set(pre)  # final LayerNorm of each pre-LN stack
  assert not {'encoder_norm', 'decoder_norm'} & set(post)


def test_kv_cache_is_sized_by_max_len():
  model = make()
  variables = random_variables(model, SRC, TGT_IN)
  state = jax.eval_shape(lambda src: model.apply(variables, src, 7,
                                                 method=model.init_decode_state), SRC)
  head_dim = BASE['d_model'] // BASE['num_heads']
  assert len(state['cache']) == BASE['num_decoder_layers']
  assert state['cache'][0]['k'].shape == (3, BASE['num_heads'], 7, head_dim)
  assert state['cross'][0]['v'].shape == (3, BASE['num_heads'], SRC.shape[1], head_dim)
  assert state['step'].shape == (3,) and state['step'].dtype == jnp.int32


def test_learned_positions_refuse_lengths_past_max_len():
  short = make(positions='learned', max_len=SRC.shape[1] - 1)
  with pytest.raises(ValueError, match='max_len'):
    jax.eval_shape(short.init, jax.random.key(0), SRC, TGT_IN)
  model = make(positions='learned')
  variables = jax.eval_shape(model.init, jax.random.key(0), SRC, TGT_IN)
  with pytest.raises(ValueError, match='max_len'):
    jax.eval_shape(lambda v: model.apply(v, SRC, BASE['max_len'] + 1,
                                         method=model.init_decode_state), variables)


@pytest.mark.parametrize('overrides', [
    dict(attention_dropout=0.0),
    dict(attention_dropout=0.0, norm='post', positions='learned', share_embeddings=True),
], ids=['pre', 'post-learned-shared'])
@pytest.mark.slow
def test_fused_attention_gives_the_written_out_outputs_and_gradients(overrides, monkeypatch):
  """Without 'intermediates' to record into, attention goes through
  jax.nn.dot_product_attention; with it, through the written-out softmax. Same logits and
  the same parameter gradients (padded sources and the causal mask included), in training
  (residual dropout on, with the same key) and out of it."""
  from attnjax.models import transformer
  calls = []
  fused = transformer.fused_attention
  monkeypatch.setattr(transformer, 'fused_attention', lambda *a: calls.append(1) or fused(*a))
  model = make(**overrides)
  variables = random_variables(model, SRC, TGT_IN)
  weights = (TGT_IN != PAD_ID).astype(jnp.float32)

  def loss(params, record, train):
    rngs = {'dropout': jax.random.key(3)} if train else None
    out = model.apply({'params': params}, PADDED_SRC, TGT_IN, train=train, rngs=rngs,
                      mutable=['intermediates'] if record else False)
    logits = out[0] if record else out
    return jnp.sum(jax.nn.log_softmax(logits)[..., 5] * weights), logits

  for train in (False, True):
    calls.clear()
    (_, fused_logits), fused_grads = jax.value_and_grad(loss, has_aux=True)(variables['params'], False, train)
    assert calls, 'the fused path was not taken'
    calls.clear()
    (_, logits), grads = jax.value_and_grad(loss, has_aux=True)(variables['params'], True, train)
    assert not calls
    np.testing.assert_allclose(fused_logits, logits, atol=1e-5, rtol=1e-5)
    # Up to float32 rounding at the leaf's own scale: a shared embedding's gradient sums its
    # three uses, which the two paths add in different orders (on some CPUs' XLA kernels an
    # entry of 0.0078 in a leaf reaching 1.0 differs by 1.7e-5); a wrong mask differs by far more.
    for (path, g), f in zip(jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(fused_grads)):
      scale = float(jnp.max(jnp.abs(g)))
      np.testing.assert_allclose(f, g, atol=1e-4 * scale, rtol=1e-4, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
def test_attention_dropout_keeps_the_written_out_path_in_training(monkeypatch):
  from attnjax.models import transformer
  calls = []
  fused = transformer.fused_attention
  monkeypatch.setattr(transformer, 'fused_attention', lambda *a: calls.append(1) or fused(*a))
  model = make(attention_dropout=0.1)
  variables = random_variables(model, SRC, TGT_IN)
  calls.clear()
  model.apply(variables, SRC, TGT_IN, train=True, rngs={'dropout': jax.random.key(0)})
  assert not calls
  model.apply(variables, SRC, TGT_IN, train=False)
  assert calls


@pytest.mark.parametrize('positions', ['sinusoidal', pytest.param('learned', marks=pytest.mark.slow)])
def test_packed_pairs_get_the_logits_and_loss_they_have_alone(positions):
  """Two pairs end to end in one row (`data.pack`) attend within themselves only and start
  their positions at 0: each gets, token for token, the logits of its own unpacked row, and
  the packed batch's loss sums are the two rows' sums."""
  from attnjax.models import loss
  model = make(positions=positions, max_len=16)
  variables = random_variables(model, SRC, TGT_IN)
  a_src, b_src = [5, 6, 7, 2], [4, 5, 6, 7, 2]
  a_tgt, b_tgt = [1, 5, 6, 7, 8], [1, 4, 4]
  alone_src = jnp.array([a_src + [0] * 4, b_src + [0] * 3], jnp.int32)         # [2, 8]
  alone_tgt = jnp.array([a_tgt + [0] * 3, b_tgt + [0] * 5], jnp.int32)
  packed_src = jnp.array([a_src + b_src + [0]], jnp.int32)                      # [1, 10]
  packed_tgt = jnp.array([a_tgt + b_tgt], jnp.int32)                            # [1, 8]
  packing = {'src_segmentation': jnp.array([[1] * 4 + [2] * 5 + [0]]),
             'src_position': jnp.array([list(range(4)) + list(range(5)) + [0]]),
             'tgt_segmentation': jnp.array([[1] * 5 + [2] * 3]),
             'tgt_position': jnp.array([list(range(5)) + list(range(3))])}
  alone = model.apply(variables, alone_src, alone_tgt)
  packed = model.apply(variables, packed_src, packed_tgt, packing=packing)
  np.testing.assert_allclose(packed[0, :5], alone[0, :5], atol=1e-5)
  np.testing.assert_allclose(packed[0, 5:], alone[1, :3], atol=1e-5)

  alone_out = jnp.array([a_tgt[1:] + [2] + [0] * 3, b_tgt[1:] + [2] + [0] * 5], jnp.int32)
  packed_out = jnp.array([a_tgt[1:] + [2] + b_tgt[1:] + [2]], jnp.int32)
  sums = lambda batch: loss.loss_sums(model, variables['params'], batch, None, 0.0, train=False)
  got = sums({'src': packed_src, 'tgt_in': packed_tgt, 'tgt_out': packed_out, **packing})
  want = sums({'src': alone_src, 'tgt_in': alone_tgt, 'tgt_out': alone_out})
  for key in ('loss', 'tokens', 'correct'):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5)
  # and they train alike: the same gradients, up to rounding
  grad = lambda batch: jax.grad(lambda p: loss.loss_sums(model, p, batch, None, 0.1, train=False)['loss'])(
      variables['params'])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               grad({'src': packed_src, 'tgt_in': packed_tgt, 'tgt_out': packed_out, **packing}),
               grad({'src': alone_src, 'tgt_in': alone_tgt, 'tgt_out': alone_out}))
