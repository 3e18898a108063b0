"""The training loop end to end on a tiny config: learning, and what a workdir is used for.

Exact resume is tested in test_reliability.py (kills) and test_parallel.py (strategies).
"""

import json

import pytest
import sacrebleu

from attnjax.train.loop import train_and_evaluate
from tests.helpers import losses, tiny_config


def test_a_few_steps_lower_the_loss(data_dir, tmp_path):
  config = tiny_config(data_dir, steps=30)
  config.train.update(log_every=10, eval_every=30, eval_samples=0, checkpoint_every=30)
  train_and_evaluate(config, tmp_path / "run", progress=False)
  by_step = losses(tmp_path / "run")
  assert by_step[30] < by_step[10] * 0.9, by_step


@pytest.mark.slow
def test_a_transformer_learns_from_packed_rows(data_dir, tmp_path):
  """`data.pack`: several pairs to a row, kept apart by their segments, train the Transformer."""
  config = tiny_config(data_dir, family="transformer", steps=30)
  config.data.pack = True
  config.train.update(log_every=10, eval_every=30, eval_samples=0, checkpoint_every=30)
  train_and_evaluate(config, tmp_path / "run", progress=False)
  by_step = losses(tmp_path / "run")
  assert by_step[30] < by_step[10] * 0.9, by_step


def test_eval_bleu_equals_sacrebleu_on_its_hypothesis_file(trained, capsys):
  from attnjax import cli
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--split", "test", "--limit", "40",
                   "--quiet"]) == 0
  report = json.loads((trained / "eval_test.json").read_text())
  hyps = (trained / "hyp_test.txt").read_text().splitlines()
  from attnjax.data.pipeline import load_pairs
  from attnjax.workdir import load_config
  refs = [t for _, t in load_pairs(load_config(trained).data, "test")[:40]]
  assert len(hyps) == len(refs) == report["sentences"] == 40
  assert report["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
  assert report["bleu_signature"].startswith("nrefs:1")
  assert sum(row["sentences"] for row in report["by_length"]) == 40
  assert "BLEU" in capsys.readouterr().out


def test_translate_and_align_work_from_the_workdir(trained, tmp_path, capsys):
  from attnjax import cli
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--quiet", "twenty one",
                   "three hundred"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 2
  out = tmp_path / "a.png"
  assert cli.main(["attnjax", "align", "--workdir", str(trained), "--src", "ninety seven",
                   "--out", str(out), "--quiet"]) == 0
  assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"


def test_beam_search_from_the_cli(trained, capsys):
  from attnjax import cli
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--beam", "3", "--quiet",
                   "forty two"]) == 0
  assert len(capsys.readouterr().out.splitlines()) == 1


def test_workdir_perplexity_is_the_loops_validation_perplexity(trained):
  """`Trained.perplexity` (used for test perplexity in the experiments) computes what the
  training loop reported for the validation split at its last step."""
  from attnjax.infer import trained as trained_lib
  rows = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
  last = max((r for r in rows if "val_ppl" in r), key=lambda r: r["step"])
  loaded = trained_lib.load(trained)
  assert loaded.step == last["step"]
  assert loaded.perplexity(loaded.config.data, "validation") == pytest.approx(last["val_ppl"], rel=1e-4)


def test_perplexity_reads_any_corpus_through_the_models_own_tokenizer(trained):
  """Scored on another corpus (numbers:de against a model of numbers:fr), the text goes through
  the model's tokenizer: the figure is finite, and the corpus's own tokenizer, whatever its
  vocabulary, does not change it."""
  import math
  from attnjax.infer import trained as trained_lib
  loaded = trained_lib.load(trained)
  other = loaded.config.data.copy_and_resolve_references()
  other.name = "numbers:de"
  first = loaded.perplexity(other, "validation")
  other.vocab_size = 40
  assert math.isfinite(first) and loaded.perplexity(other, "validation") == pytest.approx(first, rel=1e-6)


def _train_six_steps(data_dir, workdir, capsys):
  config = tiny_config(data_dir, steps=6)
  config.train.update(log_every=2, eval_every=6, eval_samples=0, checkpoint_every=6)
  train_and_evaluate(config, workdir, progress=True)
  return capsys.readouterr()


@pytest.mark.slow
def test_training_off_a_terminal_logs_one_plain_line_per_interval(data_dir, tmp_path, capsys):
  out, err = _train_six_steps(data_dir, tmp_path / "run", capsys)
  assert "\r" not in out + err
  lines = [l for l in out.splitlines() if l.startswith("step ") and "/6" in l.split()[1]]
  assert [l.split()[1] for l in lines] == ["2/6", "4/6", "6/6"]
  for line in lines:
    assert all(f" {field} " in line for field in ("loss", "tok_s", "elapsed", "eta")), line
  assert any(l.startswith("step 6: val_loss") for l in out.splitlines())


@pytest.mark.slow
def test_training_on_a_terminal_draws_the_bar_instead(data_dir, tmp_path, capsys, monkeypatch):
  from attnjax import progress
  monkeypatch.setattr(progress, "is_terminal", lambda: True)
  out, err = _train_six_steps(data_dir, tmp_path / "run", capsys)
  assert "\r" in err and "6/6" in err  # tqdm's frames
  assert not [l for l in out.splitlines() if l.startswith("step 2/6")]


def test_the_log_counts_time_tokens_and_flops_and_resuming_adds_to_them(data_dir, tmp_path):
  """Each log and validation record carries what training has spent: its wall time without
  validation, the target tokens (padding excluded) and 3x the forward FLOPs of the batches'
  padded shapes, summed from the batches themselves; a resumed run goes on counting."""
  import numpy as np
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  from attnjax.models import flops
  from attnjax.tokens import PAD_ID
  config = tiny_config(data_dir, steps=6)
  config.train.update(log_every=2, eval_every=3, eval_samples=8, checkpoint_every=3)
  batches = pipeline.train_iterator(config.data, seed=config.seed, prepared=prepare(config.data, progress=False),
                                    num_devices=1)
  tokens, work = [0], [0.0]
  for _ in range(6):
    batch = next(batches)
    tokens.append(tokens[-1] + int(np.sum(batch["tgt_out"] != PAD_ID)))
    (b, s), t = batch["src"].shape, batch["tgt_out"].shape[-1]
    work.append(work[-1] + 3 * flops.forward(config.model, 64, b, s, t))
  config.train.num_steps = 3
  train_and_evaluate(config, tmp_path / "run", progress=False)
  config.train.num_steps = 6
  train_and_evaluate(config, tmp_path / "run", progress=False)
  records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  for record in records:
    assert record["tgt_tokens"] == tokens[record["step"]], record
    assert record["train_flops"] == pytest.approx(work[record["step"]], rel=1e-12), record
  clock = [r["train_s"] for r in records]
  assert all(a <= b for a, b in zip(clock, clock[1:])) and clock[0] > 0, clock
  assert {r["step"] for r in records if "val_ppl" in r} == {3, 6}
