"""experiments/gpu/run.sh, the accelerator's one script, at smoke sizes on the CPU: every part
runs and writes what it promises, and a part that outruns its limit is said and does not stop
the others."""

import json
import os
import re
import subprocess
import sys
import pytest

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "experiments", "gpu", "run.sh")


def _run(tmp_path, **env):
  env = dict(os.environ, SMOKE="1", OUT=str(tmp_path), PYTHON=sys.executable, **env)
  return subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=1200)


def test_every_part_writes_its_results(tmp_path):
  proc = _run(tmp_path, FLAX_WMT=str(tmp_path / "no_example"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"[flax-wmt] skipped: no {tmp_path / 'no_example'}/{{models,train}}.py" in proc.stderr
  runs = [json.loads(l) for l in (tmp_path / "bench.jsonl").read_text().splitlines()]
  assert [(r["model"], r["task"], r["beam"], r["dtype"], r["encoder_impl"]) for r in runs] == [
      ("transformer", "train", None, "bfloat16", None), ("transformer", "train", None, "bfloat16", None),
      ("transformer", "train", None, "bfloat16", None),
      ("rnn_attention", "train", None, "bfloat16", "scan"), ("rnn_seq2seq", "train", None, "bfloat16", "scan"),
      ("rnn_attention", "train", None, "float32", "scan"), ("rnn_attention", "train", None, "float32", "cudnn"),
      ("transformer", "decode", 1, "bfloat16", None), ("transformer", "decode", 4, "bfloat16", None)]
  assert all(r["step_s_median"] > 0 for r in runs)
  assert runs[1]["loss_chunk"] == 8 and runs[0]["loss_chunk"] is None
  assert runs[2]["params"] > runs[0]["params"]  # big is bigger than base
  budget = json.loads((tmp_path / "sweep" / "smoke" / "budget.json").read_text())
  assert {r["model"] for r in budget.values()} >= {"transformer", "rnn_attention", "rnn_attention_cudnn"}
  assert (tmp_path / "parallelism" / "results_smoke.md").exists()
  assert "MFU" in proc.stdout and re.search(r"transformer +bfloat16 +decode +4 ", proc.stdout)
  assert re.search(r"rnn_attention cudnn +float32 +train ", proc.stdout)
  assert re.search(r"transformer chunk 8 +bfloat16 +train ", proc.stdout)


def test_a_part_past_its_limit_is_said_and_the_others_run_in_the_order_named(tmp_path):
  proc = _run(tmp_path, PARTS="decode bench cudnn", LIMIT_BENCH="1")
  assert proc.returncode == 1
  names = ("greedy", "beam-4", "transformer-base", "transformer-base-chunked", "transformer-big", "rnn-attention", "rnn-seq2seq",
           "rnn-attention-f32", "rnn-attention-cudnn")
  said = [proc.stderr.index(f"[{name}] stopped at its limit of 1 s; what it wrote is kept") for name in names]
  assert said == sorted(said)
  assert "no bench results" in proc.stdout and not (tmp_path / "sweep").exists()


def test_an_unknown_part_is_refused(tmp_path):
  proc = _run(tmp_path, PARTS="bench flux")
  assert proc.returncode == 2 and "unknown part 'flux'" in proc.stderr
  proc = _run(tmp_path, PARTS=" ")
  assert proc.returncode == 2 and "PARTS is empty" in proc.stderr
  assert not (tmp_path / "bench.jsonl").exists()  # refused before anything ran


def test_a_second_run_into_the_same_folder_appends(tmp_path):
  for _ in range(2):
    assert _run(tmp_path, PARTS="decode").returncode == 0
  runs = [json.loads(l) for l in (tmp_path / "bench.jsonl").read_text().splitlines()]
  assert [r["beam"] for r in runs] == [1, 4, 1, 4]


def test_the_profile_part_says_where_the_step_time_goes(tmp_path):
  proc = _run(tmp_path, PARTS="profile")
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ("profile.txt", "profile-short.txt"):
    assert "ops by time per step" in (tmp_path / name).read_text()
