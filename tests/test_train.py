"""The training loop end to end on a tiny config: learning, and what a workdir is used for.

Exact resume is tested in test_reliability.py (kills) and test_parallel.py (strategies).
"""

import json

import pytest
import sacrebleu

from attnjax.train.loop import train_and_evaluate
from tests.helpers import tiny_config


def _losses(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_a_few_steps_lower_the_loss(data_dir, tmp_path):
  config = tiny_config(data_dir, steps=30)
  config.train.update(log_every=10, eval_every=30, eval_samples=0, checkpoint_every=30)
  train_and_evaluate(config, tmp_path / "run", progress=False)
  losses = _losses(tmp_path / "run")
  assert losses[30] < losses[10] * 0.9, losses


def test_eval_bleu_equals_sacrebleu_on_its_hypothesis_file(trained, capsys):
  from attnjax import cli
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--split", "test", "--limit", "40",
                   "--quiet"]) == 0
  report = json.loads((trained / "eval_test.json").read_text())
  hyps = (trained / "hyp_test.txt").read_text().splitlines()
  from attnjax.data.pipeline import load_pairs
  from attnjax.config import load
  refs = [t for _, t in load_pairs(load(trained).data, "test")[:40]]
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
