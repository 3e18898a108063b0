r"""Experiment 4's report: time per token at a fixed token budget, latency at batch 1, the
work side, devices, and Table 1's claims checked in numbers.

    python -m experiments.parallelism.report --preset cpu

Reads the run's raw files kept in `<report_dir>/runs_<preset>/` ({models,budget,latency,devices}.json,
which `run.py` copies there) and writes `results_<preset>.md`, `budget_<preset>.png`,
`latency_<preset>.png` and `flops_<preset>.png` into the report folder: a pure function of the
kept files. Times are medians over the side-by-side rounds, with the rounds' range in brackets
where the rows keep them. Each claim is stated with what was measured and what it needs, and
says whether it holds, whatever the numbers are.
"""

import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from experiments.parallelism import work  # noqa: E402

WORK = "_work"  # the suffix of a model sized to the Transformer's FLOPs per token (run.py)


class _Labels(dict):
  """A model's name in the tables; `<name>_work` is `<name>` sized to equal work."""

  def __missing__(self, name):
    if name.endswith(WORK) and name[:-len(WORK)] in self:
      return f"{self[name[:-len(WORK)]]}, equal work"
    return name


LABELS = _Labels({"rnn_seq2seq": "RNN, no attention", "rnn_attention": "RNN + attention",
                  "rnn_attention_cudnn": "RNN + attention, cuDNN encoder",
                  "mingru": "minGRU, no attention", "mingru_attention": "minGRU + attention",
                  "transformer": "Transformer"})


def _order(name: str) -> tuple:
  """Equal-parameter models, then equal-work ones, each in LABELS' order; the Transformer last."""
  base = name[:-len(WORK)] if name.endswith(WORK) else name
  keys = list(dict.__iter__(LABELS))
  return (name == "transformer", name.endswith(WORK), keys.index(base) if base in keys else len(keys), name)


def looped(rows: list[dict]) -> bool:
  """Whether a model's compiled forward pass walks time in a loop of n steps (an LSTM's scan),
  rather than in log depth (the minGRU's associative scan) or not at all."""
  return any(r["sequential_steps_per_layer"] > 1 for r in rows)


def recurrent(budget: dict) -> list[str]:
  """The models in `budget` other than the Transformer, in table order."""
  return sorted({r["model"] for r in budget.values() if r.get("model") != "transformer"}, key=_order)

# What the claims need (Vaswani et al. 2017, Table 1, read at a fixed token budget).
MIN_RNN_RISE = 2.0         # an RNN's time per token, longest n over shortest n
MAX_FLAT = 1.5             # the Transformer's time per token below the crossover, max over min
MAX_SCAN_FLAT = 1.3        # a loop-free recurrence's time per token, n = 512 over n = 32
RISE = 1.25                # time per token "starts to rise" past this factor over its minimum
MAX_CROSSOVER_GAP = 2.0    # XLA's crossover against the analytic one, either way


def results_dir(report_dir, preset: str) -> pathlib.Path:
  """Where a finished run keeps its raw files, and the report reads them."""
  return pathlib.Path(report_dir) / f"runs_{preset}"


def _read(root, name):
  path = root / f"{name}.json"
  return json.loads(path.read_text()) if path.exists() else {}


def _size(model: dict) -> str:
  if model["family"] == "transformer":
    return (f"d_model {model['d_model']}, {model['num_heads']} heads, d_ff {model['d_ff']}, "
            f"{model['num_encoder_layers']}+{model['num_decoder_layers']} layers")
  if model["family"] == "minrnn":
    return (f"min{model['cell'].upper()} hidden {model['hidden_dim']}, embed {model['embed_dim']}, "
            f"{model['num_layers']} layer(s), attention {model['attention']}, {model['scan']} scan")
  encoder = ", cuDNN encoder" if model.get("encoder_impl") == "cudnn" else ""
  return (f"{model['cell'].upper()} hidden {model['hidden_dim']}, embed {model['embed_dim']}, "
          f"{model['num_layers']} layer(s), decoder {model['decoder']}{encoder}")


def _rows(budget: dict, name: str) -> list[dict]:
  return sorted((r for r in budget.values() if r["model"] == name and "skipped" not in r),
                key=lambda r: r["length"])


def xla_counts_all(env: dict) -> bool:
  """Whether XLA's cost analysis sees a loop-free program's whole work. On a CPU it does. On a
  GPU the matrix products run as library (cuBLAS, cuDNN) custom calls that it does not count: on
  an H200 it gave the Transformer's training step 71 MFLOP per token against 296 in its matrix
  products alone, and the same at every n although attention's work grows with n."""
  return env.get("platform", "cpu") == "cpu"


def _xla_whole(row: dict) -> bool:
  """Whether XLA's count of the row's program is its whole work: no loops (XLA counts a loop's
  body once) and a device whose work XLA sees (`count_flops` sets `xla_counts_all`)."""
  return not row.get("loops") and row.get("xla_counts_all", True)


def crossover(budget: dict) -> dict:
  """Where the Transformer's attention work passes its projections' work.

  analytic: from the matrix-product count, attention per token grows as n and the projections'
  per token stays fixed, so n* = n * projection / attention at any n. xla (where XLA counts the
  whole program): XLA's forward FLOPs per token fitted as a + b n; n* = a / b.
  """
  rows = _rows(budget, "transformer")
  if not rows:
    return {}
  r = rows[-1]
  out = {"analytic": r["length"] * r["projection_flops"] / r["attention_flops"]}
  points = [(r["length"], r["forward_flops"] / r["target_tokens"]) for r in rows
            if r["forward_flops"] and _xla_whole(r)]
  if len(points) >= 2:
    b, a = np.polyfit([n for n, _ in points], [f for _, f in points], 1)
    out["xla"] = a / b if b > 0 else float("inf")
  return out


def count_flops(budget: dict, sizes: dict, vocab: int, xla: bool = True) -> None:
  """Each row's forward matrix-product FLOPs (`attnjax/models/flops.py`) as `model_flops`,
  None for a model it does not count (RNNs of two layers); `xla_counts_all`: whether XLA's
  cost analysis saw the device's whole work (`xla_counts_all(env)`)."""
  import ml_collections
  from attnjax.models import flops
  for row in budget.values():
    if "skipped" in row:
      continue
    row["xla_counts_all"] = xla
    cfg = ml_collections.ConfigDict(sizes[row["model"]]["model"])
    try:
      row["model_flops"] = flops.forward(cfg, vocab, row["batch"], row["length"], row["length"])
    except ValueError:
      row["model_flops"] = None


def train_flops(row: dict) -> float | None:
  """A training step's FLOPs: XLA's count where it is whole (`_xla_whole`), else 3x the counted
  forward matrix products (`attnjax/models/flops.py`), else None."""
  if _xla_whole(row) and row.get("train_flops"):
    return row["train_flops"]
  return 3 * row["model_flops"] if row.get("model_flops") else None


def rate(row: dict) -> float | None:
  """Achieved GFLOP/s of the training step."""
  flops = train_flops(row)
  return None if flops is None else flops / row["step_s"] / 1e9


def step_cost(latency: dict, name: str) -> float | None:
  """Seconds one dependent encoder step adds at batch 1: the slope of encoding time over n."""
  points = sorted((r["length"], r["seconds"]) for r in latency.values()
                  if r["model"] == name and r["task"] == "encode")
  if len(points) < 2:
    return None
  return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def rise_point(rows: list[dict], key: str = "us_per_token") -> int | None:
  """The first n past the fastest at which the time per token exceeds RISE x its minimum."""
  if not rows:
    return None
  fastest = min(range(len(rows)), key=lambda i: rows[i][key])
  return next((r["length"] for r in rows[fastest:] if r[key] > RISE * rows[fastest][key]), None)


def claims(budget: dict, latency: dict) -> list[list]:
  """One row per claim the measurements can test: what, measured, needed, holds."""
  rows = []
  yes = lambda ok: "yes" if ok else "no"
  cross = crossover(budget)
  transformer = _rows(budget, "transformer")
  for name in recurrent(budget):
    rnn = _rows(budget, name)
    if len(rnn) < 2:
      continue
    if not looped(rnn):  # a scan of log depth over time: flat in n, like the Transformer
      by = {r["length"]: r for r in rnn}
      lo, hi = (by[32], by[512]) if 32 in by and 512 in by else (rnn[0], rnn[-1])
      ratio = hi["us_per_token"] / lo["us_per_token"]
      rows.append([LABELS[name], f"training time per token, n = {hi['length']} over n = {lo['length']} "
                   "(no loop over time: an associative scan)", f"{ratio:.2f}x",
                   f"<= {MAX_SCAN_FLAT:.1f}x", yes(ratio <= MAX_SCAN_FLAT)])
      continue
    rise = rnn[-1]["us_per_token"] / rnn[0]["us_per_token"]
    rows.append([LABELS[name], f"training time per token, n = {rnn[-1]['length']} over n = "
                 f"{rnn[0]['length']} (n dependent steps on T/n rows)", f"{rise:.2f}x",
                 f">= {MIN_RNN_RISE:.1f}x", yes(rise >= MIN_RNN_RISE)])
  if transformer and cross:
    below = [r for r in transformer if r["length"] < cross["analytic"]]
    if len(below) >= 2:
      times = [r["us_per_token"] for r in below]
      flat = max(times) / min(times)
      rows.append(["Transformer", f"training time per token, max over min for n < {cross['analytic']:.0f} "
                   "(attention's work below the projections')", f"{flat:.2f}x", f"<= {MAX_FLAT:.1f}x",
                   yes(flat <= MAX_FLAT)])
    if "xla" in cross:
      gap = max(cross["xla"], cross["analytic"]) / min(cross["xla"], cross["analytic"])
      rows.append(["Transformer", "n where attention's work passes the projections': XLA's "
                   "cost analysis against the matrix-product count",
                   f"{cross['xla']:.0f} against {cross['analytic']:.0f}",
                   f"within {MAX_CROSSOVER_GAP:.0f}x", yes(gap <= MAX_CROSSOVER_GAP)])
  by_n = {r["length"]: r for r in transformer}
  for name in [n for n in recurrent(budget) if looped(_rows(budget, n))]:
    pairs = [(r, by_n[r["length"]]) for r in _rows(budget, name) if r["length"] in by_n]
    if cross:
      pairs = [(a, b) for a, b in pairs if a["length"] < cross["analytic"]] or pairs
    if len(pairs) < 2:
      continue
    for key, what in (("us_per_token", "training step"), ("forward_us_per_token", "forward pass")):
      first = pairs[0][0][key] / pairs[0][1][key]
      last = pairs[-1][0][key] / pairs[-1][1][key]
      rows.append([f"{LABELS[name]} / Transformer", f"{what} time per token, n = {pairs[0][0]['length']} "
                   f"-> {pairs[-1][0]['length']} (the Transformer's advantage grows with n)",
                   f"{first:.2f}x -> {last:.2f}x", "grows", yes(last > first)])
  encode = {(r["model"], r["length"]): r["seconds"] for r in latency.values() if r["task"] == "encode"}
  lengths = sorted({n for _, n in encode})
  if len(lengths) >= 2 and ("transformer", lengths[0]) in encode:
    lo, hi = lengths[0], lengths[-1]
    growth = lambda m: encode[(m, hi)] / encode[(m, lo)]
    for name in [n for n in recurrent(budget) if looped(_rows(budget, n))]:
      if (name, lo) in encode and (name, hi) in encode and ("transformer", hi) in encode:
        rows.append([f"{LABELS[name]} against Transformer", f"encoding one sentence, n = {hi} over "
                     f"n = {lo} (n dependent steps against one parallel pass)",
                     f"{growth(name):.1f}x against {growth('transformer'):.1f}x", "RNN grows more",
                     yes(growth(name) > growth("transformer"))])
  decode = {(r["model"], r["length"]): r["ms_per_token"] for r in latency.values() if r["task"] == "decode"}
  train = {(r["model"], r["length"]): r["us_per_token"] for r in budget.values() if "skipped" not in r}
  for name in recurrent(budget):
    common_m = [m for (model, m) in decode if model == name and ("transformer", m) in decode
                and (name, m) in train and ("transformer", m) in train]
    if not common_m:
      continue
    m = max(common_m)
    in_decode = decode[(name, m)] / decode[("transformer", m)]
    in_training = train[(name, m)] / train[("transformer", m)]
    rows.append([f"{LABELS[name]} / Transformer", f"time per token at n = {m}: greedy decoding at "
                 "batch 1 (dependent steps for both) against training", f"{in_decode:.2f}x against "
                 f"{in_training:.2f}x", "decoding's ratio smaller", yes(in_decode < in_training)])
  return rows


def _fmt(x, digits=1):
  return "–" if x is None else f"{x:,.{digits}f}"


def _sig(x: float) -> str:
  """Three significant figures, without an exponent (0.953, 12.4, 895, 1,234)."""
  if x == 0:
    return "0"
  digits = max(0, 2 - math.floor(math.log10(abs(x))))
  return f"{x:,.{digits}f}"


def _timed(median: float, rounds: list | None, scale: float) -> str:
  """A median time, scaled, with the range of its side-by-side rounds where kept."""
  if median is None:
    return "–"
  text = _sig(scale * median)
  if rounds and len(rounds) > 1:
    text += f" ({_sig(scale * min(rounds))}-{_sig(scale * max(rounds))})"
  return text


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  meta, budget, latency, devices = (_read(root, n) for n in ("models", "budget", "latency", "devices"))
  if not meta:
    raise SystemExit(f"nothing measured under {root}; run `python -m experiments.parallelism.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  env, sizes = meta["environment"], meta["models"]
  names = sorted(sizes, key=_order)
  s = env["settings"]
  device = env.get("device", env["device_kind"])
  xla = xla_counts_all(env)
  count_flops(budget, sizes, s["vocab"], xla)

  ref = s.get("work_length")
  flops_at_ref = lambda n: sizes[n].get("train_flops_per_token")
  model_rows = [[LABELS[n], "work" if n.endswith(WORK) else "parameters", f"{sizes[n]['params']:,}",
                 f"{sizes[n]['params'] / sizes['transformer']['params']:.2f}",
                 _fmt(flops_at_ref(n) and flops_at_ref(n) / 1e6, 2),
                 _fmt(flops_at_ref(n) and flops_at_ref("transformer") and flops_at_ref(n) / flops_at_ref("transformer"), 2),
                 _size(sizes[n]["model"])]
                for n in names]
  uncounted = [LABELS[n] for n in names if n != "transformer" and not n.endswith(WORK)
               and f"{n}{WORK}" not in sizes and n != "rnn_attention_cudnn"]

  lengths = sorted({r["length"] for r in budget.values()})
  budget_rows = []
  for length in lengths:
    row = [length, max(1, s["budget"] // length)]
    for n in names:
      r = budget.get(f"{n}/{length}")
      if r is None or "skipped" in r:
        row += [r["skipped"] if r else "–", "–", "–", "–"]
      else:
        per_token = 1e6 / r["target_tokens"]
        row += [_timed(r["step_s"], r.get("step_rounds_s"), per_token),
                _timed(r["forward_s"], r.get("forward_rounds_s"), per_token),
                _fmt(rate(r), 0 if (rate(r) or 0) >= 1000 else 1),
                r["sequential_steps_per_layer"]]
    budget_rows.append(row)
  budget_header = ["n", "batch"] + [f"{LABELS[n]}: {what}" for n in names
                                    for what in ("train µs/token", "forward µs/token", "train GFLOP/s",
                                                 "sequential steps")]

  cross = crossover(budget)
  work_rows = []
  for length in lengths:
    row = [length]
    for n in names:
      r = budget.get(f"{n}/{length}")
      ok = r is not None and "skipped" not in r and r["train_flops"] is not None
      row += ([f"{r['train_flops'] / r['target_tokens'] / 1e6:,.2f}",
               f"{r['train_bytes'] / r['target_tokens'] / 1e3:,.1f}" if r["train_bytes"] else "–"]
              if ok else ["–", "–"])
    t = budget.get(f"transformer/{length}")
    row += ([f"{t['attention_flops'] / t['target_tokens'] / 1e6:,.3f}",
             f"{t['projection_flops'] / t['target_tokens'] / 1e6:,.3f}"]
            if t and "skipped" not in t else ["–", "–"])
    work_rows.append(row)
  work_header = (["n"] + [f"{LABELS[n]}: {what}" for n in names for what in ("MFLOP/token", "kB/token")]
                 + ["Transformer attention MFLOP/token", "projections MFLOP/token"])

  encode = {(r["model"], r["length"]): r for r in latency.values() if r["task"] == "encode"}
  decode = {(r["model"], r["length"]): r for r in latency.values() if r["task"] == "decode"}
  encode_rows = [[n_] + [_timed(encode[(m, n_)]["seconds"], encode[(m, n_)].get("rounds_s"), 1000) if (m, n_) in encode else "–"
                         for m in names] for n_ in sorted({n for _, n in encode})]
  decode_rows = [[m_] + [_timed(decode[(m, m_)]["seconds"], decode[(m, m_)].get("rounds_s"), 1000 / m_) if (m, m_) in decode else "–"
                         for m in names] for m_ in sorted({n for _, n in decode})]

  rise = {n: rise_point(_rows(budget, n)) for n in names}
  claim_rows = claims(budget, latency)

  md = report_dir / f"results_{preset}.md"
  budget_png, latency_png, flops_png = (report_dir / f"{what}_{preset}.png"
                                        for what in ("budget", "latency", "flops"))
  wall = f", {env['wall_s'] / 60:.0f} minutes wall in all" if env.get("wall_s") else ""
  cross_text = (f"By the matrix-product count the Transformer's attention (scores and weighted sums, "
                f"n² d) passes its projections (n d²) at n ≈ {cross['analytic']:.0f}"
                + (f"; a line fitted to XLA's FLOPs per token puts it at n ≈ {cross['xla']:.0f}"
                   if "xla" in cross else "")
                + ". Time per token starts to rise (past "
                f"{RISE:.2f}x its minimum) at n = {rise.get('transformer') or 'none measured'} for the "
                "Transformer" if cross else "")
  rnn_rise = "; ".join(f"{LABELS[n]} at n = {rise[n] or 'none measured'}" for n in names if n != "transformer")
  md.write_text(
      f"# RNN against Transformer: parallelism, measured ({preset} preset)\n\n"
      f"Device: {device}; JAX {env['jax']}; {s['dtype']}{wall}. At each length the models are "
      f"timed side by side: after {s['warmup']} warm-up call(s), {s['timed']} rounds "
      f"({s['latency_timed']} for latency) in which each model runs one call in turn, ended by "
      "`block_until_ready`; each figure is the median over the rounds.\n\n"
      "## Models\n\n"
      + (("Two matchings to the Transformer: the same parameter count, and the same work, that is "
          f"the same training FLOPs per target token at n = {ref} by the project's count "
          "(3x the forward matrix products, `attnjax/models/flops.py`); at other n the work per "
          "token of an RNN stays the same while the Transformer's attention grows with n.\n\n"
          + common.table(["model", "matched on", "parameters", "/ Transformer",
                          f"train MFLOP/token at n = {ref} (counted)", "/ Transformer", "size"], model_rows)
          + (f"\nNo equal-work model for {', '.join(uncounted)}: the count does not cover it.\n"
             if uncounted else ""))
         if ref else "Parameter counts matched to the Transformer's (this run has no equal-work "
         "models).\n\n" + common.table(["model", "parameters", "/ Transformer", "size"],
                                         [[r[0], r[2], r[3], r[6]] for r in model_rows]))
      + f"\n## (a) A fixed budget of {s['budget']:,} target tokens per step (batch × n, source = target = n)\n\n"
      "Time per target token of one training step (forward, backward, clipping, Adam) and of the "
      "teacher-forced forward pass alone. The work of the projections per token is the same at "
      "every n; what changes is how it can run: an RNN takes n dependent steps on budget / n "
      "rows, the Transformer a few products over all tokens at once. `sequential steps` is "
      "the longest `while` loop in the compiled forward pass (XLA's trip count): n for an RNN, "
      "none (1) for the Transformer. `train GFLOP/s` is the rate the step achieves: "
      + ("XLA's count for the Transformer, 3x the counted forward products for an RNN "
         if xla else "3x the counted forward matrix products (XLA's count misses this device's "
         "library calls, below) ")
      + "(`attnjax/models/flops.py`, – where it does not count the model).\n\n"
      + common.table(budget_header, budget_rows)
      + f"\n![time per token at a fixed budget]({budget_png.name})\n\n"
      + _reading(budget, latency, names)
      + _work_section(budget, names, lengths)
      + _attention_section(budget, sizes, names, lengths)
      + "\n## The work per token (XLA's cost analysis of the compiled training step)\n\n"
      "FLOPs and bytes accessed per target token of the training step. XLA counts a `while` "
      "loop's body once, so the RNNs' figures are one recurrent step plus what lies outside "
      "the loops, not their whole work; the Transformer's program has no loop and its count is "
      + ("whole. " if xla else "whole on a CPU. Not here: on this device the matrix products and "
         "attention run as library calls (cuBLAS, cuDNN) that XLA's cost analysis does not count, "
         "so these columns hold what is left (elementwise work, normalisation, the optimiser), and "
         "no crossover is fitted to them. ")
      + "The last two columns split the Transformer's forward matrix products "
      "(`attnjax/models/flops.py`).\n\n"
      + common.table(work_header, work_rows)
      + f"\n{cross_text}" + (f"; {rnn_rise}." if cross else "") + "\n"
      + f"\n![FLOPs per token]({flops_png.name})\n"
      + "\n## (b) Latency at batch 1\n\n"
      + (("Encoding one sentence of n tokens (ms): the Transformer encodes all positions in one pass, "
          "an RNN in n dependent steps.\n\n"
          + common.table(["n"] + [LABELS[n] for n in names], encode_rows)
          + "\nGreedy decoding of m tokens from a source of m, ms per generated token (encoding "
          "included, EOS suppressed): each token waits for the one before in every family; the "
          "Transformer reads its key/value cache.\n\n"
          + common.table(["m"] + [LABELS[n] for n in names], decode_rows)
          + f"\n![latency]({latency_png.name})\n") if latency else "Not measured.\n")
      + "\n## (c) Throughput against devices\n\n"
      + _devices_section(devices, s)
      + "\n## Table 1's claims, checked\n\n"
      + (common.table(["model", "claim", "measured", "needed", "holds"], claim_rows)
         if claim_rows else "Nothing measured here can test a claim.\n"))

  _plot_budget(budget, names, s, device, budget_png)
  if latency:
    _plot_latency(encode, decode, names, device, latency_png)
  _plot_flops(budget, names, cross, device, flops_png)
  written = [md, budget_png] + ([latency_png] if latency else []) + [flops_png]
  print(f"wrote {', '.join(map(str, written))}")
  return written


def _reading(budget: dict, latency: dict, names) -> str:
  """The table in words: how each family's time per token and achieved rate move with n, and
  what one dependent step costs, computed from the measurements."""
  parts = []
  for n in names:
    rows = _rows(budget, n)
    if len(rows) < 2:
      continue
    rates = [x for x in (rate(r) for r in rows) if x is not None]
    text = (f"{LABELS[n]}: {rows[0]['us_per_token']:.3g} µs per token at n = {rows[0]['length']}, "
            f"{rows[-1]['us_per_token']:.3g} at n = {rows[-1]['length']} "
            f"({rows[-1]['us_per_token'] / rows[0]['us_per_token']:.2f}x)")
    if rates:
      text += f", {min(rates):,.0f}-{max(rates):,.0f} GFLOP/s"
    parts.append(text)
  t = _rows(budget, "transformer")
  if len(t) >= 2 and _xla_whole(t[0]) and t[0].get("train_bytes") and t[-1].get("train_bytes"):
    grow = lambda key: (t[-1][key] / t[-1]["target_tokens"]) / (t[0][key] / t[0]["target_tokens"])
    parts.append(f"from n = {t[0]['length']} to {t[-1]['length']} the Transformer's bytes accessed per "
                 f"token (XLA) grow {grow('train_bytes'):.1f}x and its FLOPs per token "
                 f"{grow('train_flops'):.1f}x, its time per token "
                 f"{t[-1]['us_per_token'] / t[0]['us_per_token']:.1f}x")
  costs = [(n, step_cost(latency, n)) for n in names if n != "transformer"]
  costs = [f"{LABELS[n]} {1e6 * c:.1f} µs" for n, c in costs if c is not None]
  text = "Measured: " + "; ".join(parts) + "." if parts else ""
  if costs:
    text += (" One dependent encoder step at batch 1 (the slope of encoding time over n, part (b)) "
             "costs " + ", ".join(costs) + ".")
  return text + "\n" if text else ""


def _work_section(budget: dict, names, lengths) -> str:
  """Each RNN against the Transformer at each n, its time per token taken apart into FLOPs per
  token and achieved FLOP/s (`work.split`), and the factor that differs more."""
  rows, turns = [], {}
  for length in lengths:
    for n in names:
      if n == "transformer":
        continue
      part = work.split(budget, n, length)
      if part is None:
        continue
      rows.append([length, LABELS[n], _sig(part["us"]), _fmt(part["mflops"], 2), _fmt(part["gflops_s"], 1),
                   f"{part['time_ratio']:.2f}x", f"{part['flop_ratio']:.2f}x", f"{part['rate_ratio']:.2f}x",
                   part["factor"]])
      turns.setdefault(n, []).append((length, part))
  if not rows:
    return ""
  check = [(length, work.xla_check(budget, length)) for length in lengths]
  check = [f"n = {length}: {ratio:.2f}" for length, ratio in check if ratio is not None]
  reading = []
  for n, parts in turns.items():
    slower = [length for length, p in parts if p["time_ratio"] > 1]
    reading.append(f"{LABELS[n]}: " + (f"slower per token than the Transformer at n = "
                   f"{', '.join(map(str, slower))}" if slower else "faster per token at every n")
                   + f"; the larger factor is {_spans(parts)}")
  return ("\n## Time per token = FLOPs per token / achieved FLOP/s\n\n"
          "Each RNN against the Transformer at the same n (ratios: the RNN's over the "
          "Transformer's; time = FLOPs / rate exactly). FLOPs are the project's count for every "
          "model, so the rates compare like with like; 'larger factor' names the ratio further from "
          "1, what the difference in time per token is mostly made of: more (or less) arithmetic, "
          "or arithmetic run at another rate."
          + (f" XLA's count of the Transformer's whole training step over the project's: "
             f"{'; '.join(check)} (XLA adds the softmaxes, norms and optimiser the count leaves out)."
             if check else "") + "\n\n"
          + common.table(["n", "model", "µs/token", "MFLOP/token", "GFLOP/s", "time / Transformer",
                          "FLOPs / Transformer", "FLOP/s / Transformer", "larger factor"], rows)
          + "\n" + "; ".join(reading) + ".\n")


WITHOUT = {"rnn_attention": "rnn_seq2seq", "mingru_attention": "mingru"}  # the same family without attention


def attention_share(row: dict, model: dict) -> float | None:
  """The share of a row's counted forward FLOPs that attention's n x n part takes
  (`flops.rnn_attention`); None where the model has none or is not counted."""
  import ml_collections
  from attnjax.models import flops
  if not row.get("model_flops"):
    return None
  part = flops.rnn_attention(ml_collections.ConfigDict(model), row["batch"], row["length"], row["length"])
  return None if part is None else part / row["model_flops"]


def _attention_section(budget: dict, sizes: dict, names, lengths) -> str:
  """For each RNN with attention: the share of its counted work that the n x n attention takes,
  and its time per token over the same family's without attention (matched the same way)."""
  pairs = [(n, WITHOUT[n.removesuffix(WORK)] + (WORK if n.endswith(WORK) else "")) for n in names
           if n.removesuffix(WORK) in WITHOUT]
  rows = []
  for length in lengths:
    for with_, without in pairs:
      a, b = budget.get(f"{with_}/{length}"), budget.get(f"{without}/{length}")
      if not a or not b or "skipped" in a or "skipped" in b:
        continue
      share = attention_share(a, sizes[with_]["model"])
      rows.append([length, LABELS[with_], "–" if share is None else f"{100 * share:.0f} %",
                   f"{a['us_per_token'] / b['us_per_token']:.2f}x"])
  if not rows:
    return ""
  return ("\n## Attention in the RNNs' step\n\n"
          "How much of an attentive RNN's step is attention's n x n part (its scores and weighted "
          "sums, 4 n x width forward FLOPs a target token, against the model's counted forward "
          "FLOPs), and its time per token over the same family's without attention, matched the "
          "same way (so the two differ in their hidden sizes too, not in attention alone).\n\n"
          + common.table(["n", "model", "n x n attention, share of counted FLOPs",
                          "time per token / without attention"], rows))


def _spans(parts) -> str:
  """'FLOPs at n = 8-64, FLOP/s at n = 128-1024': runs of lengths with the same larger factor."""
  spans, start = [], 0
  for i in range(1, len(parts) + 1):
    if i == len(parts) or parts[i][1]["factor"] != parts[start][1]["factor"]:
      lo, hi = parts[start][0], parts[i - 1][0]
      spans.append(f"{parts[start][1]['factor']} at n = {lo if lo == hi else f'{lo}-{hi}'}")
      start = i
  return ", ".join(spans)


def _devices_section(devices: dict, s: dict) -> str:
  if not devices:
    return "Not measured.\n"
  if "skipped" in devices:
    return f"Not measured: {devices['skipped']}. The tests check the strategies' correctness on forced host devices.\n"
  rows, base = [], {}
  for n_dev in sorted(devices, key=int):
    result = devices[n_dev]
    if "skipped" in result:
      rows.append([n_dev, "–", "–", "–", "–", result["skipped"]])
      continue
    for r in result["rows"]:
      key = (r["model"], r["strategy"])
      base.setdefault(key, r["tokens_per_s"])
      rows.append([n_dev, LABELS[r["model"]], r["strategy"], f"{1000 * r['step_s']:.1f}",
                   f"{r['tokens_per_s']:,.0f}", f"{r['tokens_per_s'] / base[key]:.2f}x"])
  return (f"Batch {s['device_batch']} per device, n = {s['device_length']}.\n\n"
          + common.table(["devices", "model", "strategy", "ms/step", "tokens/s", "vs 1 device"], rows))


def _loglog(ax, xlabel, ylabel):
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)


def _plot_budget(budget, names, s, device, path):
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for ax, key, title in ((axes[0], "us_per_token", "training step"),
                         (axes[1], "forward_us_per_token", "forward pass")):
    for n in names:
      rows = _rows(budget, n)
      ax.plot([r["length"] for r in rows], [r[key] for r in rows], marker="o", label=LABELS[n])
    ax.set_title(title)
    _loglog(ax, "sequence length n (batch = budget / n)", "µs per target token")
  fig.suptitle(f"Time per token at {s['budget']:,} target tokens per step ({device})", fontsize=10)
  common.save_figure(fig, path)


def _plot_latency(encode, decode, names, device, path):
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for n in names:
    xs = sorted(l for m, l in encode if m == n)
    axes[0].plot(xs, [1000 * encode[(n, x)]["seconds"] for x in xs], marker="o", label=LABELS[n])
    xs = sorted(l for m, l in decode if m == n)
    axes[1].plot(xs, [decode[(n, x)]["ms_per_token"] for x in xs], marker="o", label=LABELS[n])
  axes[0].set_title("encoding one sentence (batch 1)")
  _loglog(axes[0], "source length n", "ms")
  axes[1].set_title("greedy decoding (batch 1)")
  _loglog(axes[1], "tokens generated m (source of m)", "ms per generated token")
  fig.suptitle(f"Latency at batch 1 ({device})", fontsize=10)
  common.save_figure(fig, path)


def _plot_flops(budget, names, cross, device, path):
  fig, ax = plt.subplots(figsize=(6.5, 4.4))
  rows = _rows(budget, "transformer")
  if rows and _xla_whole(rows[0]) and rows[0]["train_flops"]:
    ax.plot([r["length"] for r in rows], [r["train_flops"] / r["target_tokens"] for r in rows],
            marker="o", label="Transformer, XLA, training step")
  if rows:
    xs = [r["length"] for r in rows]
    ax.plot(xs, [3 * r["attention_flops"] / r["target_tokens"] for r in rows], linestyle="--",
            label="Transformer attention (3x forward, counted)")
    ax.plot(xs, [3 * r["projection_flops"] / r["target_tokens"] for r in rows], linestyle=":",
            label="Transformer projections (3x forward, counted)")
  for n in names:
    if n == "transformer":
      continue
    rows = [r for r in _rows(budget, n) if r.get("model_flops")]
    if rows:
      ax.plot([r["length"] for r in rows], [3 * r["model_flops"] / r["target_tokens"] for r in rows],
              marker=".", label=f"{LABELS[n]} (3x forward, counted)")
  if cross:
    ax.axvline(cross["analytic"], color="grey", alpha=0.5)
  ax.set_title(f"Training FLOPs per target token ({device})", fontsize=9)
  _loglog(ax, "sequence length n", "FLOPs per target token")
  common.save_figure(fig, path)


def main(argv=None) -> int:
  args = common.parser("parallelism", __doc__, runs=False, script="report").parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
