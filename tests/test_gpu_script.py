"""experiments/gpu/run.sh, the accelerator's one script, at smoke sizes on the CPU: every part
runs and writes what it promises, a part that outruns its limit (or the run's) is said and does
not stop the others, and a second run resumes; and the MFU ablation (`ablation.py`) it runs."""

import json
import os
import re
import subprocess
import sys
import pytest

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "experiments", "gpu", "run.sh")
ABLATION = os.path.join(REPO, "experiments", "gpu", "ablation.py")
SMOKE_BASE = ["--model", "transformer", "--task", "train", "--dtype", "bfloat16", "--attention-dropout",
              "0", "--warmup", "1", "--steps", "1", "--d-model", "32", "--heads", "2", "--ff", "64",
              "--layers", "1", "--vocab", "64", "--batch", "4", "--src-len", "8", "--tgt-len", "8"]


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
      ("minrnn_attention", "train", None, "bfloat16", None), ("minrnn_attention", "train", None, "bfloat16", None),
      ("rnn_attention", "train", None, "float32", "scan"), ("rnn_attention", "train", None, "float32", "cudnn"),
      ("transformer", "decode", 1, "bfloat16", None), ("transformer", "decode", 4, "bfloat16", None)]
  assert all(r["step_s_median"] > 0 for r in runs)
  assert runs[1]["loss_chunk"] == 8 and runs[0]["loss_chunk"] is None
  assert runs[2]["params"] > runs[0]["params"]  # big is bigger than base
  assert [r["scan"] for r in runs[5:7]] == ["associative", "sequential"]
  assert re.search(r"minrnn_attention assoc +bfloat16 +train ", proc.stdout)
  budget = json.loads((tmp_path / "sweep" / "smoke" / "budget.json").read_text())
  assert {r["model"] for r in budget.values()} >= {"transformer", "rnn_attention", "rnn_attention_cudnn"}
  assert (tmp_path / "parallelism" / "results_smoke.md").exists()
  assert "MFU" in proc.stdout and re.search(r"transformer +bfloat16 +decode +4 ", proc.stdout)
  assert re.search(r"rnn_attention cudnn +float32 +train ", proc.stdout)
  assert re.search(r"transformer chunk 8 +bfloat16 +train ", proc.stdout)
  # the ablation: one lever in the baseline's process, one in a second process with its XLA flag
  rows = {r["lever"]: r for r in map(json.loads, (tmp_path / "ablation.jsonl").read_text().splitlines())}
  assert set(rows) == {"loss-chunk", "command-buffers-off"}
  chunk, graphs = rows["loss-chunk"], rows["command-buffers-off"]
  assert chunk["first_loss"] == pytest.approx(chunk["baseline_first_loss"], rel=1e-5)  # the loss unchanged
  assert (chunk["side_by_side"], graphs["side_by_side"]) == ("one process", "two processes")
  assert "--xla_gpu_enable_command_buffer=" in graphs["xla_flags"]
  assert "--xla_gpu_enable_command_buffer" not in chunk["xla_flags"]
  assert all(len(r["baseline_ms"]) == 3 and r["ratio"] > 0 and r["mfu"] > 0 for r in rows.values())
  assert "XLA:CPU ignores xla_gpu flags" in graphs["note"]
  assert re.search(r"MFU ablation: cpu.*\n\n.*\nloss-chunk .* one process\ncommand-buffers-off .* two processes",
                   proc.stdout)
  assert set((tmp_path / "done.txt").read_text().split()) == {
      "transformer-base", "transformer-base-chunked", "transformer-big", "rnn-attention", "rnn-seq2seq",
      "mingru-attention", "mingru-attention-sequential", "rnn-attention-f32", "rnn-attention-cudnn", "greedy", "beam-4"}
  assert proc.stderr.rstrip().endswith("nothing left: every part asked for is done")


def test_a_part_past_its_limit_is_said_and_the_others_run_in_the_order_named(tmp_path):
  proc = _run(tmp_path, PARTS="decode bench cudnn", LIMIT_BENCH="1")
  assert proc.returncode == 1
  names = ("greedy", "beam-4", "transformer-base", "transformer-base-chunked", "transformer-big", "rnn-attention", "rnn-seq2seq",
           "mingru-attention", "mingru-attention-sequential", "rnn-attention-f32", "rnn-attention-cudnn")
  said = [proc.stderr.index(f"[{name}] stopped at its limit of 1 s; what it wrote is kept") for name in names]
  assert said == sorted(said)
  assert "no bench results" in proc.stdout and not (tmp_path / "sweep").exists()


def test_an_unknown_part_is_refused(tmp_path):
  proc = _run(tmp_path, PARTS="bench flux")
  assert proc.returncode == 2 and "unknown part 'flux'" in proc.stderr
  proc = _run(tmp_path, PARTS=" ")
  assert proc.returncode == 2 and "PARTS is empty" in proc.stderr
  assert not (tmp_path / "bench.jsonl").exists()  # refused before anything ran


def test_a_second_run_into_the_same_folder_skips_the_rows_it_holds(tmp_path):
  (tmp_path / "done.txt").write_text("greedy\n")  # as if an earlier run had stopped after it
  proc = _run(tmp_path, PARTS="decode")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "[greedy] measured by an earlier run" in proc.stderr
  proc = _run(tmp_path, PARTS="decode")
  assert proc.returncode == 0 and "[beam-4] measured by an earlier run" in proc.stderr
  runs = [json.loads(l) for l in (tmp_path / "bench.jsonl").read_text().splitlines()]
  assert [r["beam"] for r in runs] == [4]
  assert (tmp_path / "done.txt").read_text().split() == ["greedy", "beam-4"]


def test_parts_past_the_runs_limit_are_not_started_and_the_run_says_what_is_left(tmp_path):
  proc = _run(tmp_path, PARTS="decode ablation", LIMIT_TOTAL="1")
  assert proc.returncode == 1
  assert "[greedy] stopped at its limit of 1 s" in proc.stderr
  for name in ("beam-4", "ablation"):
    assert re.search(rf"\[{name}\] not reached: -?\d+ s left of LIMIT_TOTAL=1 s", proc.stderr)
  assert "unfinished: greedy beam-4 ablation; run the same command again" in proc.stderr
  assert not (tmp_path / "done.txt").read_text()


def test_the_profile_part_says_where_the_step_time_goes(tmp_path):
  proc = _run(tmp_path, PARTS="profile")
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ("profile.txt", "profile-short.txt"):
    assert "ops by time per step" in (tmp_path / name).read_text()


def _ablation(*args, **env):
  env = dict(os.environ, PYTHONPATH=REPO, **env)
  return subprocess.run([sys.executable, ABLATION, *args], env=env, capture_output=True, text=True,
                        timeout=600, cwd=REPO)


def test_the_ablation_says_what_it_does_and_refuses_unknown_levers(tmp_path):
  proc = _ablation("--help")
  assert proc.returncode == 0 and "side by side" in proc.stdout and "command-buffers-off" in proc.stdout
  listed = _ablation("--list").stdout.splitlines()
  assert [l.split()[0] for l in listed] == ["loss-chunk", "fused-residual", "command-buffers-off",
                                           "command-buffers-more", "prng-unsafe-rbg", "prng-rbg",
                                           "triton-gemm-off"]
  for args, message in ((["--levers", "loss-chunk,flux"], "unknown lever(s) flux in --levers"),
                        (["--rounds", "0"], "--rounds=0 must be at least 1"),
                        ([], "--out is required")):
    proc = _ablation("--out", str(tmp_path / "a.jsonl"), *args, "--", *SMOKE_BASE) if args != [] else \
        _ablation("--", *SMOKE_BASE)
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr
  proc = _ablation("--out", str(tmp_path / "a.jsonl"), "--", "--model", "rnn_attention")
  assert proc.returncode == 2 and "a training step of the Transformer" in proc.stderr


def test_every_lever_is_an_option_this_jax_and_bench_take():
  """Each lever's bench flags parse, and its XLA flags start a JAX backend (XLA aborts at an
  unknown flag; xla_gpu flags parse on a CPU and change nothing there)."""
  sys.path.insert(0, os.path.dirname(ABLATION))
  try:
    import ablation
  finally:
    sys.path.pop(0)
  from attnjax.speed import bench
  for name, lever in ablation.levers(8).items():
    bench.parse_args(SMOKE_BASE + list(lever.bench_flags))
    if lever.xla_flags:
      proc = subprocess.run([sys.executable, "-c", "import jax; jax.numpy.ones(2).block_until_ready()"],
                            env=dict(os.environ, XLA_FLAGS=lever.xla_flags), capture_output=True, text=True)
      assert proc.returncode == 0, (name, proc.stderr[-2000:])


def test_the_ablation_skips_levers_it_has_measured_on_this_device(tmp_path):
  import jax
  from attnjax.speed import bench
  out = tmp_path / "ablation.jsonl"
  out.write_text(json.dumps({"lever": "fused-residual", "device": bench.device_name(jax.devices()[0]),
                             "version": jax.__version__, "bench_flags": SMOKE_BASE}) + "\n")
  proc = _ablation("--out", str(out), "--levers", "fused-residual", "--", *SMOKE_BASE)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"every lever asked for is in {out} already" in proc.stdout
  assert len(out.read_text().splitlines()) == 1
