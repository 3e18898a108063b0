"""Evaluators are made once per (checkpoint step, arguments) and read back while both match."""

import json
import shutil

import pytest

from attnjax import evaluators
from attnjax.config import ConfigError


@pytest.fixture
def counted(monkeypatch, trained, tmp_path):
  """A copy of the trained workdir, and how often each evaluator has run on it."""
  calls = {name: 0 for name in evaluators.EVALUATORS}
  for name, ev in evaluators.EVALUATORS.items():
    def fn(*args, _fn=ev.fn, _name=name, **kwargs):
      calls[_name] += 1
      return _fn(*args, **kwargs)
    monkeypatch.setitem(evaluators.EVALUATORS, name, ev._replace(fn=fn))
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  return workdir, calls


def test_an_evaluation_is_kept_with_its_step_and_arguments_and_read_back(counted):
  workdir, calls = counted
  first = evaluators.evaluate(workdir, "bleu", width=5, batch_size=8)
  assert calls["bleu"] == 1 and first["step"] == 6 and first["arguments"] == {"width": 5}
  assert 0 <= first["bleu"] <= 100 and first["ppl"] > 1 and first["by_length"]
  assert json.loads((workdir / "experiment_test.json").read_text()) == first
  assert (workdir / "experiment_test.tsv").read_text().count("\n") == first["sentences"]
  # the batch size changes only the speed: read back
  assert evaluators.evaluate(workdir, "bleu", width=5, batch_size=32) == first and calls["bleu"] == 1
  # another argument is another measurement
  other = evaluators.evaluate(workdir, "bleu", width=3, batch_size=8)
  assert calls["bleu"] == 2 and other["arguments"] == {"width": 3} and other["bleu"] == first["bleu"]
  # a run trained further (as the experiments' training records it) is measured again
  (workdir / "train_done.json").write_text(json.dumps({"step": 7}))
  assert evaluators.evaluate(workdir, "bleu", width=3, batch_size=8)["step"] == 7 and calls["bleu"] == 3


def test_attention_is_measured_against_the_stand_in_gold(counted, data_dir):
  workdir, calls = counted
  result = evaluators.evaluate(workdir, "attention", data_dir=str(data_dir))
  assert 0 <= result["aer"] <= 1 and 0 <= result["aer_mass"] <= 1 and 0 <= result["diagonal"] <= 1
  assert 0 < result["largest_weight"] <= 1
  assert evaluators.evaluate(workdir, "attention", data_dir=str(data_dir)) == result and calls["attention"] == 1


def test_an_unknown_evaluator_or_an_untrained_workdir_is_a_clear_error(tmp_path, trained):
  with pytest.raises(ConfigError, match="no evaluator 'blue'; there are bleu, attention, scores, alignment, intervened"):
    evaluators.evaluate(trained, "blue")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ConfigError, match="no checkpoint to evaluate"):
    evaluators.evaluate(tmp_path / "empty", "bleu")


def test_the_command_lines_eval_is_made_once_and_compare_reads_its_translations(counted, tmp_path, capsys):
  import hashlib
  from attnjax import cli
  from attnjax.data import pipeline
  from attnjax.workdir import load_config
  workdir, calls = counted
  pairs = pipeline.load_pairs(load_config(workdir).data, "test")[:12]
  src, ref = tmp_path / "a.src", tmp_path / "a.ref"
  write = lambda rows: (src.write_text("".join(s + "\n" for s, _ in rows)),
                        ref.write_text("".join(r + "\n" for _, r in rows)))
  write(pairs)
  files = ["--src", str(src), "--ref", str(ref)]
  assert cli.main(["attnjax", "eval", "--workdir", str(workdir), *files]) == 0 and calls["scores"] == 1
  first = json.loads((workdir / "eval_a.src.json").read_text())
  assert first["arguments"]["src"] == {"path": str(src), "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
  assert first["sentences"] == 12 and (workdir / first["hypotheses"]).read_text().count("\n") == 12
  capsys.readouterr()
  # asked again: read back, not translated again
  assert cli.main(["attnjax", "eval", "--workdir", str(workdir), *files]) == 0 and calls["scores"] == 1
  assert "read back" in capsys.readouterr().out
  # another limit, or the files changed, is another measurement
  assert cli.main(["attnjax", "eval", "--workdir", str(workdir), *files, "--limit", "5"]) == 0
  assert calls["scores"] == 2 and json.loads((workdir / "eval_a.src.json").read_text())["sentences"] == 5
  write(pairs[:6])
  assert cli.main(["attnjax", "eval", "--workdir", str(workdir), *files]) == 0
  assert calls["scores"] == 3 and json.loads((workdir / "eval_a.src.json").read_text())["sentences"] == 6
  # compare: the baseline's translations are the ones eval kept; only the other system translates
  other = tmp_path / "other"
  shutil.copytree(workdir, other, ignore=shutil.ignore_patterns("eval_*", "hyp_*"))
  capsys.readouterr()
  assert cli.main(["attnjax", "compare", "--workdir", str(workdir), "--workdir", str(other), *files]) == 0
  assert calls["scores"] == 4
  lines = capsys.readouterr().out.splitlines()
  assert any(line.startswith("6 sentences of a.src") for line in lines)
  assert any(line.startswith(f"{other}: BLEU") and "paired bootstrap p = " in line for line in lines)
