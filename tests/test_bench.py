"""The speed protocol's bench at tiny shapes: its JSON, its decode length, remat, FLOPs, imports.

No assertion here depends on how fast the machine is.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax import models
from attnjax.speed import bench
from attnjax.infer.decode import greedy
from attnjax.tokens import EOS_ID
from attnjax.models import init_params

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--vocab", "32", "--batch", "2", "--src-len", "5", "--tgt-len", "4", "--emb", "8",
        "--hidden", "8", "--d-model", "8", "--heads", "2", "--ff", "16", "--layers", "1",
        "--warmup", "1", "--steps", "2"]
PROTOCOL = {"framework": str, "model": str, "task": str, "params": int, "batch": int,
            "src_len": int, "tgt_len": int, "threads": int, "step_s_median": float,
            "step_s_min": float, "tgt_tokens_per_s": float}
EXTRA = {"model_flops_per_step": float, "peak_flops": float, "mfu": float,
         "peak_memory_bytes": int, "device": str, "huge_pages": bool}


def _run(*flags):
  return bench.run(bench.parse_args(list(flags) + TINY))


@pytest.mark.parametrize("model", bench.MODELS)
@pytest.mark.parametrize("task", ["train", "decode"])
def test_json_has_the_protocol_fields(model, task):
  result = _run("--model", model, "--task", task)
  json.dumps(result)  # one JSON object, as printed
  for field, kind in {**PROTOCOL, **EXTRA}.items():
    assert isinstance(result[field], kind), (field, result[field])
  assert (result["framework"], result["model"], result["task"]) == ("jax", model, task)
  assert (result["batch"], result["src_len"], result["tgt_len"]) == (2, 5, 4)
  assert result["params"] > 0 and result["threads"] >= 1
  assert 0 < result["step_s_min"] <= result["step_s_median"]
  assert result["tgt_tokens_per_s"] == pytest.approx(2 * 4 / result["step_s_median"])
  assert result["model_flops_per_step"] > 0 and result["peak_flops"] > 0
  assert result["mfu"] == pytest.approx(
      result["model_flops_per_step"] / result["step_s_median"] / result["peak_flops"])
  assert result["peak_memory_bytes"] > 0
  assert result["device"].startswith("cpu")


def test_main_prints_one_json_line(capsys):
  assert bench.main(["--model", "rnn_attention", "--task", "decode", "--beam", "2"] + TINY) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 1
  assert json.loads(lines[0])["beam"] == 2


def test_decoding_runs_every_step_even_when_eos_wins():
  args = bench.parse_args(TINY + ["--model", "rnn_seq2seq", "--task", "decode", "--tgt-len", "6"])
  model = models.build(bench.model_config(args), args.vocab, args.vocab)
  params = init_params(model, seed=0)
  bias = params["decoder_net"]["projection"]["bias"]
  params["decoder_net"]["projection"]["bias"] = bias.at[EOS_ID].set(1e4)  # EOS always wins
  batch = {k: jnp.asarray(v) for k, v in bench.make_batch(args).items()}
  plain = jax.jit(lambda p, src: greedy(model, {"params": p}, src, 6))(params, batch["src"])
  assert (np.asarray(plain.lengths) == 1).all()  # without the bench's guard it stops at once
  _, step, check = bench.build_decode(args, model, params, batch)
  out = step()
  check(out)
  assert (np.asarray(out.lengths) == 6).all()


def _train_step(flags):
  """One step of bench's compiled Transformer training with these flags: (metrics, XLA's FLOPs)."""
  args = bench.parse_args(["--model", "transformer"] + flags + TINY)
  model = models.build(bench.model_config(args), args.vocab, args.vocab)
  dummy = jnp.ones((1, 8), jnp.int32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), dummy, dummy)["params"]
  batch = {k: jnp.asarray(v) for k, v in bench.make_batch(args).items()}
  compiled, step, _ = bench.build_train(args, model, params, batch)
  return step()[1], bench.xla_flops(compiled)


def test_remat_recomputes_the_same_loss():
  results = {}
  for remat in ([], ["--remat"]):
    metrics, flops = _train_step(remat)
    results[bool(remat)] = (float(metrics["loss"]), flops)
  (loss, flops), (remat_loss, remat_flops) = results[False], results[True]
  assert remat_loss == pytest.approx(loss, rel=1e-5)
  assert remat_flops > flops  # the backward pass computes the forward again


def test_loss_chunk_computes_the_same_loss_and_update(capsys):
  """--loss-chunk takes the train loop's chunked output layer: the step's loss and gradient
  norm are the unchunked ones up to rounding (3 chunks of 3 over 8 target tokens, one padded),
  computed by a loop over the chunks."""
  results, programs = {}, {}
  for chunk in (0, 3):
    metrics, programs[chunk] = _train_step(["--loss-chunk", str(chunk)])
    results[chunk] = (float(metrics["loss"]), float(metrics["grad_norm"]))
  assert results[3] == pytest.approx(results[0], rel=1e-5)
  assert programs[3] != programs[0]  # another program: the loop over chunks (XLA counts its body once)
  assert bench.main(["--model", "rnn_seq2seq", "--loss-chunk", "3"] + TINY) == 0
  assert json.loads(capsys.readouterr().out)["loss_chunk"] == 3
  for flags, message in ((["--loss-chunk", "-1"], "must be 0 (off) or positive"),
                         (["--task", "decode", "--loss-chunk", "4"], "--task train only")):
    with pytest.raises(SystemExit):
      bench.parse_args(["--model", "transformer"] + flags)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("decoder,bidirectional", [("seq2seq", False), ("seq2seq", True), ("luong", True)])
def test_rnn_flops_agree_with_xla_over_one_step(decoder, bidirectional):
  """With one source and one target token every recurrent loop runs once, so XLA's count (a
  loop's body once) is the whole forward pass: the analytic count is within a few percent."""
  from attnjax.config import rnn_model
  from attnjax.models import flops
  cfg = rnn_model(decoder=decoder)
  cfg.update(embed_dim=64, hidden_dim=128, bidirectional=bidirectional, dropout=0.0)
  model = models.build(cfg, 512, 512)
  src = tgt = jax.ShapeDtypeStruct((8, 1), jax.numpy.int32)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), src, tgt)
  forward = jax.jit(lambda v, s, t: model.apply(v, s, t)).lower(variables, src, tgt).compile()
  assert bench.xla_flops(forward) == pytest.approx(flops.forward(cfg, 512, 8, 1, 1), rel=0.1)


def test_transformer_flops_agree_with_xla():
  """The analytic count (matrix products only) is within a few percent of XLA's at a size
  where matrix products dominate."""
  args = bench.parse_args(["--model", "transformer", "--vocab", "512", "--batch", "4",
                           "--src-len", "16", "--tgt-len", "16", "--d-model", "64",
                           "--heads", "2", "--ff", "256", "--layers", "2"])
  model = models.build(bench.model_config(args), args.vocab, args.vocab)
  batch = bench.make_batch(args)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), batch["src"], batch["tgt_in"])
  forward = jax.jit(lambda v, s, t: model.apply(v, s, t)).lower(
      variables, batch["src"], batch["tgt_in"]).compile()
  assert bench.xla_flops(forward) == pytest.approx(bench.forward_flops(args), rel=0.1)


def test_the_cudnn_encoder_trains_the_same_loss_as_the_scan(capsys):
  """--encoder-impl=cudnn: jax.experimental.rnn's LSTM (its reference form on a CPU), with the
  scan's parameters converted, gives the scan's loss; the JSON line says which ran."""
  from attnjax.models import rnn
  built = {}
  for impl in ("scan", "cudnn"):
    args = bench.parse_args(["--model", "rnn_attention", "--encoder-impl", impl] + TINY)
    built[impl] = (args, models.build(bench.model_config(args), args.vocab, args.vocab))
  args, model = built["scan"]
  batch = {k: jnp.asarray(v) for k, v in bench.make_batch(args).items()}
  scan = jax.jit(model.init)(jax.random.PRNGKey(0), batch["src"], batch["tgt_in"])["params"]
  layers = bench.model_config(args).num_layers
  cudnn = dict(scan, encoder=rnn.scan_to_cudnn(scan["encoder"], layers, True))
  params = {"scan": scan, "cudnn": jax.tree.map(jnp.copy, cudnn)}  # each step donates its own
  losses = {}
  for impl in ("cudnn", "scan"):
    args, model = built[impl]
    _, step, _ = bench.build_train(args, model, params[impl], batch)
    losses[impl] = float(step()[1]["loss"])
  assert losses["cudnn"] == pytest.approx(losses["scan"], rel=1e-5)
  assert bench.main(["--model", "rnn_attention", "--encoder-impl", "cudnn"] + TINY) == 0
  assert json.loads(capsys.readouterr().out)["encoder_impl"] == "cudnn"


def test_flags_that_cannot_work_are_refused():
  with pytest.raises(SystemExit):
    bench.parse_args(["--model", "transformer", "--task", "decode", "--remat"])
  with pytest.raises(SystemExit):
    bench.parse_args(["--model", "transformer", "--batch", "0"])
  with pytest.raises(SystemExit):
    bench.parse_args(["--model", "transformer", "--attention-dropout", "1.5"])
  for flags in (["--model", "transformer"], ["--model", "rnn_attention", "--dtype", "bfloat16"]):
    with pytest.raises(SystemExit):
      bench.parse_args(flags + ["--encoder-impl", "cudnn"])
  assert bench.model_config(bench.parse_args(["--model", "transformer", "--attention-dropout", "0"])
                            ).attention_dropout == 0.0


def test_bench_imports_nothing_beyond_jax_flax_optax_numpy_ml_collections():
  heavy = ["tqdm", "matplotlib", "tensorflow", "tensorflow_datasets", "grain", "orbax",
           "sacrebleu", "sentencepiece", "tensorboardX", "attnjax.data", "attnjax.train.loop"]
  code = ("import sys, attnjax.cli, attnjax.speed.bench; "
          f"print([m for m in {heavy!r} if m in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=True)
  assert out.stdout.strip() == "[]"


def _script(name):
  """experiments/speed/NAME.py, imported as a module."""
  spec = importlib.util.spec_from_file_location(name, ROOT / f"experiments/speed/{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_report_quotes_the_ratio_of_medians_and_checks_targets(tmp_path):
  def record(key, target, side, pair, seconds, framework="jax"):
    result = {"framework": framework, "version": "x", "step_s_median": seconds,
              "tgt_tokens_per_s": 64 * 32 / seconds, "model_flops_per_step": 1e9,
              "xla_flops_per_step": 1e9, "peak_flops": 1e11, "mfu": 0.1 / seconds,
              "peak_memory_bytes": 2 ** 20, "compile_s": 1.0}
    return {"comparison": key, "title": key, "target": target, "pair": pair, "side": side,
            "command": "-m attnjax.cli bench --model transformer", "result": result}
  machine = {"cpu": "test cpu", "cores": 2, "memory_gib": 1.0, "load_before": [0, 0, 0]}
  end = {"load_after": [0, 0, 0], "runtime_s": 60, "date": "today"}
  records = []
  for pair, (a, b) in enumerate([(1.0, 2.0), (1.2, 1.8), (0.9, 2.4)]):  # medians 1.0 and 2.0
    records += [record("fast", "speedup>=1.3", "A", pair, a),
                record("fast", "speedup>=1.3", "B", pair, b, "torch")]
  for pair in range(3):  # beam costs 4x greedy
    records += [record("beam", "cost<=3", "A", pair, 4.0), record("beam", "cost<=3", "B", pair, 1.0)]
  runs = tmp_path / "runs.jsonl"
  runs.write_text("\n".join(json.dumps(x) for x in [{"machine": machine}] + records + [{"end": end}]) + "\n")
  text = _script("report").write(runs, tmp_path / "results.md").read_text()
  fast = next(l for l in text.splitlines() if l.startswith("| fast |"))
  beam = next(l for l in text.splitlines() if l.startswith("| beam |"))
  assert "speedup 2.00x" in fast and "| met |" in fast
  assert "cost 4.00x" in beam and "missed" in beam
  assert "test cpu" in text
  assert "huge pages" not in text  # runs that do not say, say nothing

  for r in records:
    r["result"]["huge_pages"] = r["result"]["framework"] == "jax"
  runs.write_text("\n".join(json.dumps(x) for x in [{"machine": machine}] + records + [{"end": end}]) + "\n")
  text = _script("report").write(runs, tmp_path / "results.md").read_text()
  assert "huge pages (`attnjax/speed/hugepages.py`): attnjax on, the PyTorch peer off." in text


def test_profile_names_the_ops_of_the_compiled_step_and_their_threads(capsys, tmp_path):
  profile = _script("profile")
  hlo = tmp_path / "step.hlo"
  argv = ["--model", "rnn_seq2seq", "--profile-steps", "2", "--bucket-ms", "1", "--top", "5",
          "--hlo", str(hlo)] + TINY
  assert profile.main(argv) == 0
  out = capsys.readouterr().out
  listed, timeline = out.split("\nlast step:")
  names = [line.split()[-1] for line in listed.splitlines()[1:]]
  assert 1 <= len(names) <= 5
  compiled = hlo.read_text()
  assert all(f"%{name} = " in compiled for name in names)  # the compiled program's ops
  rows = [line for line in timeline.splitlines()[1:] if line.strip()]
  assert rows
  for row in rows:  # each thread's share of a bucket is a fraction of it
    shares = [float(w[:-1]) for w in row.split() if w.endswith("%")]
    assert shares and all(0.0 <= s <= 100.0 for s in shares)


def test_profile_gpu_summary_splits_kernel_time_by_part(monkeypatch):
  """The GPU summary on a made-up trace of 2 steps: busy and idle time, parts from op names."""
  profile = _script("profile")
  ms = 1_000_000
  kernels = [("Stream #7(Compute)", 0, 4 * ms, "nvjet_sm90_tst_128x128"),        # cuBLAS, no op name
             ("Stream #7(Compute)", 4 * ms, 2 * ms, "loop_add_fusion_3"),        # feed-forward bias
             ("Stream #9(Compute)", 5 * ms, 2 * ms, "input_reduce_fusion_12"),   # overlaps the above
             ("Stream #7(Compute)", 10 * ms, 2 * ms, "gemm_fusion_dot_4"),       # after 3 ms idle
             ("XLA Modules", 0, 12 * ms, "jit_train_step")]                      # not a kernel
  monkeypatch.setattr(profile, "_events", lambda path, planes=None: kernels)
  hlo = "\n".join([
      '  %loop_add_fusion.3 = bf16[8,4]{1,0} fusion(%p), kind=kLoop, metadata={op_name="jit(train_step)/jvp(Transformer)/decoder_layers_0/feed_forward/ff_in/add"}',
      '  %input_reduce_fusion.12 = f32[8]{0} fusion(%q), kind=kInput, metadata={op_name="jit(train_step)/jvp(jit(log_softmax))/reduce_max"}',
      '  ROOT %gemm_fusion_dot.4 = bf16[8,8]{1,0} fusion(%r), kind=kCustom, metadata={op_name="jit(train_step)/jvp(Transformer)/self_attention/self_attention._attend/bthd,bhsd->bhts/dot_general"}'])
  out = profile.device_summary("trace", 2, 3, wall_ms=7.0, hlo_text=hlo)
  assert out[0].startswith("GPU: 2 kernels a step, busy 4.50 ms a step, idle 1.50 ms a step")
  assert out[0].endswith("7.00 ms a step on the host's clock")
  parts = {line.split("%  ")[1]: float(line.split()[0]) for line in out[2:6]}
  assert parts == {"matrix products: unnamed": 2.0, "other kernels: feed-forward": 1.0,
                   "other kernels: loss": 1.0, "matrix products: attention": 1.0}
  assert out[7].split() == ["2.000", "nvjet_sm90_tst_128x128"]
  assert "feed_forward/ff_in/add" in "\n".join(out)


@pytest.mark.parametrize("flags", [["--sampling", "topk:5"], ["--sampling", "nucleus:0.9"],
                                   ["--beam", "3", "--nbest", "3"]])
def test_decode_variants_time_every_step(flags):
  result = _run("--model", "transformer", "--task", "decode", *flags)
  assert result["tgt_len"] == 4 and result["step_s_median"] > 0
  assert result["sampling"] == (flags[1] if flags[0] == "--sampling" else None)
  assert result["nbest"] == (3 if "--nbest" in flags else None)


@pytest.mark.parametrize("flags", [["--sampling", "topk:0"], ["--sampling", "topk:2", "--beam", "2"],
                                   ["--nbest", "3", "--beam", "2"], ["--task", "train", "--nbest", "1"]])
def test_bad_decode_variants_are_refused(flags, capsys):
  with pytest.raises(SystemExit):
    bench.parse_args(["--model", "transformer", "--task", "decode"] + TINY + flags)


def test_embed_grad_times_every_way_and_they_agree_in_float32(capsys):
  """Six ways of writing the lookup's gradient are one sum: in float32 they agree to rounding."""
  embed_grad = _script("embed_grad")
  embed_grad.main(["--vocab", "40", "--d-model", "8", "--shapes", "6x5", "3x7", "--dtype", "float32",
                   "--warmup", "1", "--steps", "2"])
  captured = capsys.readouterr()
  rows = [json.loads(line) for line in captured.out.splitlines()]
  assert [(r["way"], r["batch"], r["length"]) for r in rows] == [
      (way, b, t) for b, t in [(6, 5), (3, 7)] for way in embed_grad.WAYS]
  assert all(r["ms_median"] > 0 and r["max_abs_diff"] < 1e-5 for r in rows)
  assert "way" in captured.err and "6x5" in captured.err


@pytest.mark.parametrize("flags,message", [(["--shapes", "6by5"], "a shape is BATCHxLENGTH"),
                                           (["--shapes", "0x5"], "positive"),
                                           (["--vocab", "4"], "at least 5"),
                                           (["--steps", "0"], "--steps 0: at least 1")])
def test_embed_grad_refuses_bad_flags(flags, message, capsys):
  with pytest.raises(SystemExit):
    _script("embed_grad").main(flags)
  assert message in capsys.readouterr().err
