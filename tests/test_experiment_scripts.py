"""The experiment scripts as commands: a failure the user can fix is one line, as `attnjax`
prints it, and `--list` shows what `--only` and `--shard` would do (one task of an array)."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from attnjax.errors import OutputError
from experiments import common
from experiments.alignments import run as alignments
from experiments.bottleneck import run as bottleneck

REPO = Path(__file__).resolve().parents[1]


def test_an_out_that_is_a_file_is_one_line_and_a_non_zero_exit(tmp_path):
  out = tmp_path / "a_file"
  out.write_text("")
  done = subprocess.run([sys.executable, "-m", "experiments.bottleneck.run", "--preset", "smoke", "--out",
                         str(out), "--data_dir", str(tmp_path / "data")], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 1, done.stderr
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("python -m experiments.bottleneck.run: error: "), done.stderr
  assert str(out / "smoke" / "encdec-30") in lines[0]


def test_only_errors_users_can_fix_lose_their_traceback(capsys):
  seen = []
  hook = lambda *exc: seen.append(exc[0])
  for err in (OutputError("cannot write /x"), FileNotFoundError(2, "No such file", "/y")):
    common._fail_in_one_line(type(err), err, None, traceback_hook=hook)
  common._fail_in_one_line(KeyError, KeyError("a bug"), None, traceback_hook=hook)
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 2 and lines[0].endswith(": error: cannot write /x")
  assert lines[1].endswith(": error: [Errno 2] No such file: '/y'")
  assert seen == [KeyError]   # a bug keeps its traceback


def test_list_names_the_runs_only_and_shard_pick(capsys):
  def listed(main, *flags):
    assert main(["--preset", "smoke", "--list", *flags]) == 0
    return capsys.readouterr().out.split()

  assert listed(bottleneck.main) == ["encdec-30", "bahdanau-50"]
  assert listed(bottleneck.main, "--shard", "1/2") == ["bahdanau-50"]
  assert listed(bottleneck.main, "--only", "bahdanau-50,encdec-30", "--shard", "0/2") == ["encdec-30"]
  assert listed(alignments.main) == ["bahdanau", "transformer"]
  assert listed(alignments.main, "--only", "transformer") == ["transformer"]


def test_no_experiment_imports_another_experiments_run_or_report():
  """What several experiments need lives in experiments/common.py and shared.py; an experiment's
  folder imports only its own scripts, so one can change without breaking another."""
  import ast
  crossings = []
  for path in sorted((REPO / "experiments").glob("*/*.py")):
    own = path.parent.name
    for node in ast.walk(ast.parse(path.read_text())):
      names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
               [a.name for a in node.names] if isinstance(node, ast.Import) else [])
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("experiments."):
        names += [f"{node.module}.{a.name}" for a in node.names]
      for name in names:
        parts = name.split(".")
        if len(parts) >= 2 and parts[0] == "experiments" and parts[1] not in (own, "common", "shared"):
          crossings.append(f"{path.relative_to(REPO)} imports {name}")
  assert not crossings, crossings


def test_every_run_and_report_script_names_itself_in_its_help(capsys):
  names = ("alignments", "bottleneck", "interventions", "parallelism", "quality", "scores")
  for module in [f"experiments.{n}.{script}" for n in names for script in ("run", "report")] + ["experiments.grid"]:
    with pytest.raises(SystemExit) as done:
      importlib.import_module(module).main(["--help"])
    assert done.value.code == 0, module
    assert capsys.readouterr().out.startswith(f"usage: python -m {module} "), module
