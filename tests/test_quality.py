"""Experiment 6, time to quality: the report's targets and costs from runs whose answers are
known, and the smoke preset end to end."""

import json
import shutil

import pytest

from experiments.quality import report
from experiments.quality import run as quality


ATTENDS, BOTTLENECK = {"family": "transformer"}, {"family": "rnn", "decoder": "seq2seq"}


def _kept_run(root, family: str, seed: int, curve: list[tuple], parameters: int = 1000, model=ATTENDS):
  """A kept run whose validations are (step, seconds, BLEU, perplexity), 100 tokens and 1e9
  FLOPs a step, with a training record between each two."""
  folder = root / f"{family}-seed{seed}"
  folder.mkdir(parents=True)
  lines = []
  for step, seconds, bleu, ppl in curve:
    spent = {"train_s": seconds, "tgt_tokens": 100 * step, "train_flops": 1e9 * step}
    lines.append({"step": step, "loss": 1.0, **spent})
    lines.append({"step": step, "val_loss": 0.5, "val_ppl": ppl, "val_bleu": bleu, **spent})
  (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
  (folder / "train_done.json").write_text(json.dumps({"step": curve[-1][0]}))
  (folder / "config.json").write_text(json.dumps({"data": {"name": "numbers:fr"}, "model": model}))
  (folder / "provenance.json").write_text(json.dumps(
      {"cell": {"family": family, "seed": seed, "config": f"configs/{family}.py", "parameters": parameters},
       "machine": "a test machine"}))


def _fast_and_slow(root):
  """Two attentive families: fast's pilot reaches BLEU 50 (lowest perplexity 2.0), slow's 40
  (3.0), and fast reaches any target earlier and in less time."""
  _kept_run(root, "fast", 0, [(100, 10.0, 30.0, 5.0), (200, 20.0, 45.0, 2.5), (300, 30.0, 50.0, 2.0)])
  _kept_run(root, "fast", 1, [(100, 11.0, 37.0, 3.2), (200, 22.0, 46.0, 2.4), (300, 33.0, 49.0, 2.1)])
  _kept_run(root, "slow", 0, [(100, 30.0, 10.0, 9.0), (200, 60.0, 36.5, 3.4), (300, 90.0, 40.0, 3.0)])
  _kept_run(root, "slow", 1, [(100, 31.0, 12.0, 9.0), (200, 62.0, 30.0, 3.5), (300, 93.0, 36.0, 3.3)])


def test_targets_come_from_the_weakest_pilot_and_each_run_is_read_at_its_first_hit(tmp_path):
  root = tmp_path / "runs_cpu"
  # fast reaches BLEU 50 in its pilot, slow 40 (so BLEU target 36.0); lowest perplexities 2.0
  # and 3.0 (so perplexity target 3.3). fast reaches both earlier and in less time.
  _fast_and_slow(root)
  report.write(root, "cpu", tmp_path)
  data = json.loads((tmp_path / "results_cpu.json").read_text())
  # both families attend: one tier of targets
  assert data["targets"] == [{"tier": "every family", "bleu": 36.0, "ppl": 3.3,
                              "bleu_from": report.EVERY, "ppl_from": report.EVERY}]
  fast, slow = (data["families"][f]["reached"][0] for f in ("fast", "slow"))
  assert [hit["step"] for hit in fast["val_bleu"]] == [200, 100]
  assert [hit["train_s"] for hit in slow["val_bleu"]] == [60.0, 93.0]
  assert [hit["tgt_tokens"] for hit in slow["val_ppl"]] == [30000, 30000]
  assert [hit["train_flops"] for hit in fast["val_ppl"]] == [2e11, 1e11]
  assert data["families"]["fast"]["flops_per_token"] == [1e7, 1e7] and data["families"]["fast"]["parameters"] == 1000
  md = (tmp_path / "results_cpu.md").read_text()
  assert "Machine: a test machine (4 runs)" in md
  assert "validation BLEU at least 36 (from the weakest family's pilot)" in md
  assert "the least is fast's; against it, slow +61.00 s" in md  # (60 + 93) / 2 - (20 + 11) / 2
  assert "slow +76.00 s (Holm p 0.0228, significant)" in md  # to perplexity 3.3: 90, 93 against 20, 11
  assert (tmp_path / "curves_cpu.png").read_bytes()[:4] == b"\x89PNG"

  # Given targets replace the pilot's; a family that misses one in a seed is counted, not tested.
  report.write(root, "cpu", tmp_path, target_bleu=45.0)
  data = json.loads((tmp_path / "results_cpu.json").read_text())
  assert data["targets"] == [{"tier": "given", "bleu": 45.0, "ppl": 3.3, "bleu_from": "given",
                              "ppl_from": report.EVERY}]
  assert data["families"]["slow"]["reached"][0]["val_bleu"] == [None, None]
  md = (tmp_path / "results_cpu.md").read_text()
  assert "| slow | 0 of 2 |" in md
  assert "fewer than two families reached it in every seed; nothing tested" in md


def test_attentive_families_are_also_compared_at_the_weakest_attentive_pilots_target(tmp_path):
  root = tmp_path / "runs_cpu"
  # the bottleneck's pilot peaks at BLEU 5 (perplexity 20): its targets, 4.5 and 22, are passed by
  # both attentive families at their first validation. The weaker attentive pilot peaks at BLEU 40
  # (perplexity 3.0): targets 36 and 3.3, which tell them apart and which the bottleneck misses.
  _kept_run(root, "bottleneck", 0, [(100, 5.0, 2.0, 40.0), (200, 10.0, 5.0, 20.0)], model=BOTTLENECK)
  _kept_run(root, "bottleneck", 1, [(100, 5.0, 1.0, 45.0), (200, 10.0, 4.6, 21.0)], model=BOTTLENECK)
  _fast_and_slow(root)
  report.write(root, "cpu", tmp_path)
  data = json.loads((tmp_path / "results_cpu.json").read_text())
  assert [(t["tier"], t["bleu"], t["ppl"]) for t in data["targets"]] == [
      ("every family", 4.5, 22.0), ("the attentive families", 36.0, 3.3)]
  families = data["families"]
  assert [families[f]["attends"] for f in ("bottleneck", "fast", "slow")] == [False, True, True]
  # every family's tier: all reach it, the attentive ones at their first validation
  assert [hit["step"] for hit in families["bottleneck"]["reached"][0]["val_bleu"]] == [200, 200]
  assert [hit["step"] for hit in families["slow"]["reached"][0]["val_bleu"]] == [100, 100]
  # the attentive tier: the bottleneck reaches it in no seed, and is counted, not tested
  assert families["bottleneck"]["reached"][1] == {"val_bleu": [None, None], "val_ppl": [None, None]}
  assert [hit["train_s"] for hit in families["slow"]["reached"][1]["val_bleu"]] == [60.0, 93.0]
  md = (tmp_path / "results_cpu.md").read_text()
  assert "validation BLEU at least 36 (from the weakest attentive family's pilot)" in md
  assert "| bottleneck | 0 of 2 |" in md
  attentive = md.split("weakest attentive family's pilot)")[1]
  assert "the least is fast's; against it, slow +61.00 s" in attentive and "bottleneck +" not in attentive


def test_a_report_without_runs_says_which_command_makes_them(tmp_path):
  with pytest.raises(SystemExit, match="experiments.quality.run --preset cpu"):
    report.write(tmp_path / "runs_cpu", "cpu", tmp_path)


@pytest.mark.slow
def test_the_smoke_preset_trains_every_family_and_reports_what_its_logs_say(tmp_path, data_dir, capsys):
  args = ["--preset", "smoke", "--out", str(tmp_path / "runs"), "--data_dir", str(data_dir),
          "--report_dir", str(tmp_path / "report")]
  assert quality.main(args) == 0
  # on another machine (no workdirs), the kept runs are finished: nothing is trained again
  shutil.rmtree(tmp_path / "runs")
  capsys.readouterr()
  assert quality.main(args) == 0
  assert capsys.readouterr().out.count("(finished before), skipped") == len(quality.grid("smoke"))
  assert not (tmp_path / "runs").exists()
  kept = tmp_path / "report" / "runs_smoke"
  names = sorted(quality.grid("smoke"))
  assert sorted(p.name for p in kept.iterdir() if p.is_dir()) == names
  data = json.loads((tmp_path / "report" / "results_smoke.json").read_text())
  assert sorted(data["families"]) == sorted(quality.FAMILIES)
  for family, row in data["families"].items():
    for seed, hit in zip(row["seeds"], row["reached"][0]["val_ppl"]):
      curve = report.validations(kept / f"{family}-seed{seed}" / "metrics.jsonl")
      assert [r["step"] for r in curve] == [2, 4, 6]
      first = next(r for r in curve if r["val_ppl"] <= data["targets"][0]["ppl"])
      assert hit == {cost: first[cost] for cost in report.COSTS}
    assert row["parameters"] > 0 and all(f > 0 for f in row["flops_per_token"])
  # the weakest pilot reaches its own target by construction
  pilots = [report.validations(kept / f"{family}-seed0" / "metrics.jsonl") for family in quality.FAMILIES]
  assert data["targets"][0]["ppl"] >= max(min(r["val_ppl"] for r in curve) for curve in pilots)
