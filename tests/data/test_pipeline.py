"""Grain batches: fixed shapes, exact token layout, disjoint shards, exact resume, complete eval."""

import itertools
import random

import numpy as np
import pytest

from attnjax import config as config_lib
from attnjax.data import pipeline, prepare
from attnjax.tokens import BOS_ID, EOS_ID

WORDS = "the a cat dog red big house sees eats runs my your old small".split()
MAX_SRC, MAX_TGT = 24, 32


def corpus(n: int, seed: int) -> list[tuple[str, str]]:
  """Pairs of 1-30 words; the target is the source reversed, upper-cased."""
  rng = random.Random(seed)
  pairs = []
  for _ in range(n):
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
    pairs.append((" ".join(words), " ".join(reversed(words)).upper()))
  return pairs


SPLITS = {"train": corpus(300, 0), "valid": corpus(45, 1), "test": corpus(10, 2)}


def data_cfg(tmp_path, **overrides):
  cfg = config_lib.base().data
  cfg.update(name="files", data_dir=str(tmp_path / "data"), files_dir=str(tmp_path / "files"),
             vocab_size=100, max_src_len=MAX_SRC, max_tgt_len=MAX_TGT, batch_size=8, prefetch=0)
  cfg.update(overrides)
  return cfg


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("pipeline")
  files = tmp_path / "files"
  files.mkdir()
  for prefix, pairs in SPLITS.items():
    (files / f"{prefix}.src").write_text("".join(s + "\n" for s, _ in pairs))
    (files / f"{prefix}.tgt").write_text("".join(t + "\n" for _, t in pairs))
  cfg = data_cfg(tmp_path)
  return cfg, prepare.prepare(cfg, progress=False)


def train(prepared, seed=0, num_devices=1, process_index=0, process_count=1, **overrides):
  cfg, data = prepared
  cfg = cfg.copy_and_resolve_references()
  cfg.update(overrides)
  return pipeline.train_iterator(cfg, seed=seed, prepared=data, num_devices=num_devices,
                                 process_index=process_index, process_count=process_count)


def fits(pair_ids) -> bool:
  src, tgt = pair_ids
  return 0 < len(src) < MAX_SRC and 0 < len(tgt) < MAX_TGT


def decoded_rows(batch, tokenizers):
  return [(tokenizers.src.decode(s), tokenizers.tgt.decode(t))
          for s, t in zip(batch["src"], batch["tgt_out"])]


def test_bucket_widths_are_few_multiples_of_eight():
  for max_len in (8, 24, 64, 100, 256):
    widths = pipeline.bucket_widths(max_len)
    assert all(w % 8 == 0 for w in widths) and widths == sorted(set(widths))
    assert widths[-1] == -(-max_len // 8) * 8 and len(widths) <= 13
  assert pipeline.bucket_widths(64) == [8, 16, 24, 32, 40, 56, 64]


def test_batches_have_fixed_shapes_from_the_bucket_table(prepared):
  it = train(prepared)
  widths = set(pipeline.bucket_widths(MAX_TGT))
  shapes = {tuple(s) for s in it.stats["shapes"]}
  for batch in itertools.islice(it, it.stats["batches_per_epoch"]):
    assert sorted(batch) == ["src", "tgt_in", "tgt_out"]
    assert all(v.dtype == np.int32 for v in batch.values())
    assert batch["tgt_in"].shape == batch["tgt_out"].shape
    assert (8, batch["src"].shape[1], batch["tgt_in"].shape[1]) in shapes
    assert batch["src"].shape[1] in widths and batch["src"].shape[1] <= MAX_SRC
  assert len(shapes) <= len(pipeline.bucket_widths(MAX_TGT))
  assert 0 < it.stats["padding_fraction"]["src"] < 0.5


def test_token_layout_eos_bos_and_zero_padding(prepared):
  it = train(prepared)
  batch = next(it)
  for src, tgt_in, tgt_out in zip(batch["src"], batch["tgt_in"], batch["tgt_out"]):
    n, m = np.count_nonzero(src), np.count_nonzero(tgt_out)
    assert src[n - 1] == EOS_ID and not src[n:].any() and src[:n].all()
    assert tgt_in[0] == BOS_ID and tgt_out[m - 1] == EOS_ID
    assert np.array_equal(tgt_in[1:m], tgt_out[:m - 1]) and not tgt_in[m:].any()
    assert EOS_ID not in src[:n - 1] and BOS_ID not in tgt_in[1:m]


def test_an_epoch_covers_every_pair_that_fits_and_counts_the_rest(prepared):
  cfg, data = prepared
  tokenizers = data.tokenizers()
  ids = [(tokenizers.src.encode(s), tokenizers.tgt.encode(t)) for s, t in SPLITS["train"]]
  it = train(prepared)
  seen = set()
  for batch in itertools.islice(it, it.stats["batches_per_epoch"]):
    seen.update(decoded_rows(batch, tokenizers))
  assert seen == {pair for pair, i in zip(SPLITS["train"], ids) if fits(i)}
  assert it.stats["filtered"] == {"empty": 0, "too_long": sum(not fits(i) for i in ids)}
  assert it.stats["filtered"]["too_long"] > 0
  assert it.stats["pairs"] == sum(fits(i) for i in ids)


def test_process_shards_are_disjoint_slices_of_the_global_batch(prepared):
  whole = train(prepared, num_devices=2)
  shards = [train(prepared, num_devices=2, process_index=p, process_count=2) for p in (0, 1)]
  for _ in range(6):
    full, parts = next(whole), [next(s) for s in shards]
    for key in full:
      assert parts[0][key].shape[0] == 4
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), full[key])


def test_global_batch_must_divide_over_processes_and_devices(prepared):
  with pytest.raises(ValueError, match=r"batch_size=8 must be a positive multiple of .* 3×1=3"):
    train(prepared, process_index=0, process_count=3)
  with pytest.raises(ValueError, match="batch_size=6"):
    train(prepared, batch_size=6, num_devices=4)


def test_resume_from_state_gives_exactly_the_next_batch(prepared):
  it = train(prepared, prefetch=2)
  steps = it.stats["batches_per_epoch"] + 3  # into the second epoch
  for _ in range(steps):
    next(it)
  state = it.get_state()
  assert state == {"seed": 0, "epoch": 1, "batch": 3}
  expected = [next(it) for _ in range(2)]
  resumed = train(prepared, prefetch=2)
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_epochs_are_reshuffled_and_the_seed_fixes_them(prepared):
  def first_epoch_and_next(seed):
    it = train(prepared, seed=seed)
    n = it.stats["batches_per_epoch"]
    return [next(it)["src"] for _ in range(2 * n)], n

  a, n = first_epoch_and_next(0)
  b, _ = first_epoch_and_next(0)
  c, _ = first_epoch_and_next(1)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a[:n], c[:n]))
  assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a[:n], a[n:]))


def test_token_based_batches_use_a_fixed_row_count_per_shape(prepared):
  it = train(prepared, tokens_per_batch=128, num_devices=2)
  rows = {(s, t): r for r, s, t in it.stats["shapes"]}
  for batch in itertools.islice(it, it.stats["batches_per_epoch"]):
    b, s = batch["src"].shape
    t = batch["tgt_in"].shape[1]
    assert rows[(s, t)] == b and b % 2 == 0 and b * max(s, t) <= 128


def test_packed_rows_hold_whole_pairs_with_segments_and_positions(prepared):
  cfg, data = prepared
  tokenizers = data.tokenizers()
  it = train(prepared, pack=True)
  assert [tuple(s) for s in it.stats["shapes"]] == [(8, 24, 32)]
  seen = []
  for batch in itertools.islice(it, it.stats["batches_per_epoch"]):
    for r in range(batch["src"].shape[0]):
      src_seg, tgt_seg = batch["src_segmentation"][r], batch["tgt_segmentation"][r]
      assert np.array_equal(src_seg > 0, batch["src"][r] > 0)
      assert np.array_equal(tgt_seg > 0, batch["tgt_in"][r] > 0)
      for segment in range(1, src_seg.max() + 1):
        s, t = src_seg == segment, tgt_seg == segment
        src, tgt_in, tgt_out = batch["src"][r][s], batch["tgt_in"][r][t], batch["tgt_out"][r][t]
        assert src[-1] == EOS_ID and tgt_in[0] == BOS_ID and tgt_out[-1] == EOS_ID
        assert np.array_equal(batch["src_position"][r][s], np.arange(s.sum()))
        assert np.array_equal(batch["tgt_position"][r][t], np.arange(t.sum()))
        seen.append((tokenizers.src.decode(src), tokenizers.tgt.decode(tgt_out)))
  assert set(seen) == {p for p in SPLITS["train"]
                       if fits((tokenizers.src.encode(p[0]), tokenizers.tgt.encode(p[1])))}
  assert it.stats["padding_fraction"]["src"] < train(prepared).stats["padding_fraction"]["src"] + 0.3


@pytest.mark.parametrize("process_count", [1, 3])
def test_eval_covers_every_example_once_in_order(prepared, process_count):
  cfg, data = prepared
  tokenizers = data.tokenizers()
  references = pipeline.load_pairs(cfg, "validation", prepared=data)
  assert references == SPLITS["valid"]
  shards = [list(pipeline.eval_batches(cfg, "validation", batch_size=12, prepared=data,
                                       num_devices=1, process_index=p, process_count=process_count))
            for p in range(process_count)]
  batches = [{k: np.concatenate([s[i][k] for s in shards]) for k in shards[0][i]}
             for i in range(len(shards[0]))]
  assert len(batches) == 4  # 45 pairs in batches of 12
  index = np.concatenate([b["index"][b["weight"] > 0] for b in batches])
  np.testing.assert_array_equal(index, np.arange(len(references)))
  last = batches[-1]
  assert last["weight"].tolist() == [1] * 9 + [0] * 3 and last["weight"].dtype == np.float32
  assert not last["src"][9:].any() and (last["index"][9:] == -1).all()
  for batch in batches:
    assert batch["src"].shape[1] in pipeline.bucket_widths(MAX_TGT)
    for row, i in enumerate(batch["index"]):
      src, tgt = references[i] if i >= 0 else ("", "")
      if i >= 0 and len(tokenizers.src.encode(src)) < MAX_SRC:
        assert tokenizers.src.decode(batch["src"][row]) == src
      if i >= 0 and len(tokenizers.tgt.encode(tgt)) < MAX_TGT:
        assert tokenizers.tgt.decode(batch["tgt_out"][row]) == tgt
