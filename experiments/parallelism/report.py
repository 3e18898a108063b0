r"""Experiment 4's report: step time against length, loops in the compiled program, devices.

    python -m experiments.parallelism.report --preset cpu

Reads `<out>/<preset>/{models,steps,loops,devices}.json` and writes `results_<preset>.md`,
`step_time_<preset>.png`, `devices_<preset>.png` and the raw `measurements_<preset>.json`
into the report folder.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import common  # noqa: E402

LABELS = {"rnn_seq2seq": "RNN, no attention", "rnn_attention": "RNN + attention",
          "rnn_attention_cudnn": "RNN + attention, cuDNN encoder", "transformer": "Transformer"}
PAPER = {"rnn_seq2seq": "O(n)", "rnn_attention": "O(n)", "rnn_attention_cudnn": "O(n)", "transformer": "O(1)"}


def _read(root, name):
  path = root / f"{name}.json"
  return json.loads(path.read_text()) if path.exists() else {}


def _size(model: dict) -> str:
  if model["family"] == "transformer":
    return (f"d_model {model['d_model']}, {model['num_heads']} heads, d_ff {model['d_ff']}, "
            f"{model['num_encoder_layers']}+{model['num_decoder_layers']} layers")
  return (f"{model['cell'].upper()} hidden {model['hidden_dim']}, embed {model['embed_dim']}, "
          f"{model['num_layers']} layer(s), decoder {model['decoder']}")


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  meta, steps, loops, devices = (_read(root, n) for n in ("models", "steps", "loops", "devices"))
  if not meta:
    raise SystemExit(f"nothing measured under {root}; run `python -m experiments.parallelism.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  env, sizes = meta["environment"], meta["models"]
  names = [n for n in LABELS if n in sizes]
  s = env["settings"]

  model_rows = [[LABELS[n], f"{sizes[n]['params']:,}",
                 f"{sizes[n]['params'] / sizes['transformer']['params']:.2f}", _size(sizes[n]["model"])]
                for n in names]
  lengths = sorted({r["length"] for r in steps.values()})
  step_rows = []
  for length in lengths:
    row = [length]
    for n in names:
      r = steps.get(f"{n}/{length}")
      row += [f"{1000 * r['step_s']:.1f}", f"{r['tokens_per_s']:,.0f}"] if r else ["–", "–"]
    step_rows.append(row)
  step_header = ["n"] + [f"{LABELS[n]} {what}" for n in names for what in ("ms/step", "tokens/s")]

  loop_rows = []
  for r in sorted(loops.values(), key=lambda r: (names.index(r["model"]), r["length"])):
    trips = [l["trip_count"] for l in r["loops"]]
    where = ", ".join(sorted({l["where"] for l in r["loops"]})) or "–"
    loop_rows.append([LABELS[r["model"]], r["length"], len(r["loops"]),
                      " ".join(map(str, trips)) or "–", where, r["sequential_steps_per_layer"],
                      PAPER[r["model"]]])

  device_rows, base = [], {}
  for n_dev in sorted(devices, key=int):
    result = devices[n_dev]
    if "skipped" in result:
      device_rows.append([n_dev, "–", "–", "–", "–", result["skipped"]])
      continue
    for r in result["rows"]:
      key = (r["model"], r["strategy"])
      base.setdefault(key, r["tokens_per_s"])
      device_rows.append([n_dev, LABELS[r["model"]], r["strategy"], f"{1000 * r['step_s']:.1f}",
                          f"{r['tokens_per_s']:,.0f}", f"{r['tokens_per_s'] / base[key]:.2f}x"])
  device_kind = next((d["device_kind"] for d in devices.values()), env["device_kind"])

  md, step_png, dev_png = (report_dir / f"results_{preset}.md", report_dir / f"step_time_{preset}.png",
                           report_dir / f"devices_{preset}.png")
  md.write_text(
      f"# RNN against Transformer: parallelism, measured ({preset} preset)\n\n"
      f"Device: {env['platform']} ({env['device_kind']}), {env['cpu_count']} CPU cores visible, "
      f"JAX {env['jax']}. Float32 throughout. Timings are medians of {s['timed']} steps after "
      f"{s['warmup']} warm-up step(s); a shared machine makes them noisy.\n\n"
      "## Models (parameter counts matched to the Transformer's)\n\n"
      + common.table(["model", "parameters", "/ Transformer", "size"], model_rows)
      + f"\n## (a) One training step against sequence length n (batch {s['batch']}, source = target = n)\n\n"
      + common.table(step_header, step_rows)
      + f"\n![step time]({step_png.name})\n"
      + "\n## (b) Sequential steps in the compiled forward pass (Vaswani et al. 2017, Table 1)\n\n"
      "`while` loops in the optimised HLO of the teacher-forced forward pass, with their trip counts "
      "(`known_trip_count`). Each loop is one RNN layer and direction, or the decoder; a loop of n "
      "iterations is n steps that must run one after another. The Transformer's program has no loop: "
      "each layer is one parallel step over all positions.\n\n"
      + common.table(["model", "n", "while loops", "trip counts", "where", "sequential steps per layer",
                      "paper"], loop_rows)
      + f"\n## (c) Throughput against device count (batch {s['device_batch']} per device, "
      f"n = {s['device_length']}, {device_kind})\n\n"
      + ("On a CPU the devices are host devices forced with `--xla_force_host_platform_device_count`; "
         "they share the machine's cores, so more of them cannot add compute.\n\n"
         if env["platform"] == "cpu" else "")
      + common.table(["devices", "model", "strategy", "ms/step", "tokens/s", "vs 1 device"], device_rows)
      + f"\n![devices]({dev_png.name})\n")

  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
  for n in names:
    rows = sorted((r for r in steps.values() if r["model"] == n), key=lambda r: r["length"])
    ax1.plot([r["length"] for r in rows], [1000 * r["step_s"] for r in rows], marker="o", label=LABELS[n])
    ax2.plot([r["length"] for r in rows], [r["tokens_per_s"] for r in rows], marker="o", label=LABELS[n])
  for ax, label in ((ax1, "ms per training step"), (ax2, "target tokens per second")):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
  fig.suptitle(f"Training step against length ({env['device_kind']}, batch {s['batch']})")
  common.save_figure(fig, step_png)

  fig, ax = plt.subplots(figsize=(6, 4.2))
  for model, strategy in base:
    xs, ys = [], []
    for n_dev in sorted(devices, key=int):
      for r in devices[n_dev].get("rows", []):
        if (r["model"], r["strategy"]) == (model, strategy):
          xs.append(int(n_dev))
          ys.append(r["tokens_per_s"])
    ax.plot(xs, ys, marker="o", linestyle="-" if strategy == "mesh" else "--",
            label=f"{LABELS[model]}, {strategy}")
  ax.set_xlabel("devices")
  ax.set_ylabel("target tokens per second")
  ax.set_xticks(sorted({int(n) for n in devices}))
  ax.set_title(f"Throughput against devices ({device_kind})")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  common.save_figure(fig, dev_png)

  raw = report_dir / f"measurements_{preset}.json"
  raw.write_text(json.dumps({"models": meta, "steps": steps, "loops": loops, "devices": devices}, indent=2) + "\n")
  print(f"wrote {md}, {step_png}, {dev_png} and {raw}")
  return [md, step_png, dev_png, raw]


def main(argv=None) -> int:
  return common.report_main("parallelism", __doc__, write, argv)


if __name__ == "__main__":
  sys.exit(main())
