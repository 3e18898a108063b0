"""A user's own grid from the command line (`python -m experiments.grid`): every point and seed
trained once, measured by the named evaluators, kept with provenance and reported with tests
over seeds; bad grids are one-line usage errors."""

import json

import pytest

from attnjax.config import ConfigError
from experiments import grid


def _args(tmp_path, data_dir, *more):
  return ["--config", "configs/rnn_luong.py", "--preset", "smoke", "--out", str(tmp_path / "runs"),
          "--data_dir", str(data_dir), *more]


def test_the_runs_are_every_point_of_the_grid_from_every_seed(tmp_path, data_dir, capsys):
  args = _args(tmp_path, data_dir, "--grid", "model.hidden_dim=16,24", "train.learning_rate=1e-2,3e-3",
               "--seeds", "2", "--list")
  assert grid.main(args) == 0
  names = capsys.readouterr().out.split()
  assert len(names) == 8 and len(set(names)) == 8
  assert names[:4] == ["model.hidden_dim=16_train.learning_rate=0.01_seed0",
                       "model.hidden_dim=16_train.learning_rate=0.003_seed0",
                       "model.hidden_dim=24_train.learning_rate=0.01_seed0",
                       "model.hidden_dim=24_train.learning_rate=0.003_seed0"]  # seed-major
  assert all(n.endswith("_seed1") for n in names[4:])
  assert grid.main(args + ["--shard", "1/3"]) == 0
  assert capsys.readouterr().out.split() == names[1::3]


def test_a_point_of_the_grid_sets_its_fields_over_the_preset_and_the_seed(tmp_path, data_dir):
  base = grid._load_config("configs/rnn_luong.py")
  cell = {"point": {"model.hidden_dim": 24, "train.learning_rate": 3e-3}, "seed": 1}
  args = grid.common.parse(grid._parser(), _args(tmp_path, data_dir))
  config = grid.make_config(base, cell, args)
  assert (config.model.hidden_dim, config.train.learning_rate, config.seed) == (24, 3e-3, 1)
  assert config.data.name == "numbers:fr" and config.train.num_steps == grid.SMOKE_STEPS
  assert base.model.hidden_dim != 24  # the base is not changed


@pytest.mark.slow
def test_a_grid_trains_once_keeps_its_runs_and_reports_tests_over_seeds(tmp_path, data_dir, capsys):
  args = _args(tmp_path, data_dir, "--grid", "model.hidden_dim=16,24", "--seeds", "2")
  assert grid.main(args) == 0
  kept = tmp_path / "runs" / "rnn_luong" / "runs_smoke"
  runs = sorted(p for p in kept.iterdir() if p.is_dir())
  assert len(runs) == 4
  for run in runs:
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["cell"]["point"]["model.hidden_dim"] in (16, 24) and provenance["machine"]
    assert json.loads((run / "experiment_test.json").read_text())["step"] == grid.SMOKE_STEPS
  md = (tmp_path / "runs" / "rnn_luong" / "results_smoke.md").read_text()
  body = [l for l in md.splitlines() if l.startswith("| 16 |") or l.startswith("| 24 |")]
  assert len(body) == 2 and all(l.split("|")[2].strip() == "2" for l in body)  # two seeds each
  against = [l.strip("|").split(" | ") for l in md.splitlines() if l.startswith("| model.hidden_dim=")]
  assert len(against) == 1  # the best point against the other
  best, other, seeds, difference, welch, holm, verdict = (c.strip() for c in against[0])
  assert {best, other} == {"model.hidden_dim=16", "model.hidden_dim=24"} and seeds == "2"
  assert float(difference) >= 0 and verdict in ("significant", "no difference detected with 2 seeds",
                                                "untested (2 seeds or no spread)")
  assert "Not finished" not in md
  capsys.readouterr()
  # the same command again: nothing trained, the same report
  assert grid.main(args) == 0
  assert capsys.readouterr().out.count("skipped") == 4
  assert (tmp_path / "runs" / "rnn_luong" / "results_smoke.md").read_text() == md
  # the report alone, with a run hidden: it names what has not finished
  hidden = runs[0] / "train_done.json"
  hidden.rename(hidden.with_suffix(".hidden"))
  assert grid.main(args + ["--report"]) == 0
  assert f"Not finished yet (1 of 4 runs): {runs[0].name}." in (
      tmp_path / "runs" / "rnn_luong" / "results_smoke.md").read_text()


@pytest.mark.parametrize("more,message", [
    (["--grid", "model.hiden_dim=16,24"], "the config has no field 'model.hiden_dim'"),
    (["--grid", "model.hidden_dim"], "want FIELD=V1,V2"),
    (["--grid", "model.hidden_dim=16,big"], "'big' is not of the field's type, int"),
    (["--grid", "model.hidden_dim=16", "model.hidden_dim=24"], "model.hidden_dim given twice"),
    (["--evaluators", "bleu,blue"], "no evaluator blue; there are bleu, attention"),
    (["--seeds", "0"], "--seeds 0: want at least 1"),
])
def test_a_bad_grid_is_a_usage_error_that_names_it(tmp_path, data_dir, capsys, more, message):
  with pytest.raises(SystemExit) as exit:
    grid.main(_args(tmp_path, data_dir, *more))
  assert exit.value.code == 2
  last = capsys.readouterr().err.splitlines()[-1]  # after the usage, one line
  assert last.startswith("python -m experiments.grid: error: ") and message in last


def test_a_missing_config_or_another_grids_runs_are_refused(tmp_path, data_dir):
  with pytest.raises(ConfigError, match="no config file configs/nope.py"):
    grid.main(["--config", "configs/nope.py", "--preset", "smoke", "--out", str(tmp_path)])
  kept = tmp_path / "runs" / "rnn_luong" / "runs_smoke"
  kept.mkdir(parents=True)
  (kept / "grid.json").write_text(json.dumps({
      "config": "configs/rnn_luong.py", "grid": {"model.hidden_dim": ["32"]}, "seeds": 2, "steps": 0,
      "evaluators": ["bleu"], "data": {"data_dir": str(data_dir)}, "runs": []}))
  with pytest.raises(ConfigError, match="holds the runs of another grid \\(its grid differ\\)"):
    grid.main(_args(tmp_path, data_dir, "--grid", "model.hidden_dim=16,24", "--seeds", "2"))
