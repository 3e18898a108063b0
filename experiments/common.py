"""What the experiments share: their flags, configs from config files, training that skips
finished runs, test BLEU by source length, and markdown tables."""

import argparse
import importlib.util
import json
import pathlib
import statistics
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
PRESETS = ("smoke", "cpu", "full")


def parser(name: str, doc: str) -> argparse.ArgumentParser:
  """--preset, --out (runs, one folder per preset inside), --data_dir, --report_dir."""
  p = argparse.ArgumentParser(prog=f"python -m experiments.{name}.run",
                              description=doc.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", choices=PRESETS, default="cpu",
                 help="smoke: seconds, for the tests; cpu: this machine; full: a GPU")
  p.add_argument("--out", default=f"runs/experiments/{name}",
                 help="where the runs go, in a folder per preset (default %(default)s)")
  p.add_argument("--data_dir", default="", help="data.data_dir for the corpora (default: the config's)")
  p.add_argument("--report_dir", default=str(REPO / "experiments" / name),
                 help="where the report's tables and plots go (default: the experiment's folder)")
  return p


def runs_dir(args) -> pathlib.Path:
  return pathlib.Path(args.out) / args.preset


def load_config(spec: str):
  """`configs/rnn_luong.py:score=dot` -> the ConfigDict that `--config` would load."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(f"config_{pathlib.Path(path).stem}", REPO / path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def make_tiny(config, data_dir: str, steps: int):
  """The smoke preset of any config: numbers:fr, a tiny model of the same family, `steps` steps."""
  config.data.update(name="numbers:fr", data_dir=data_dir, vocab_size=64, max_src_len=16,
                     max_tgt_len=16, batch_size=8, prefetch=0)
  if config.model.family == "rnn":
    config.model.update(embed_dim=16, hidden_dim=16)
  else:
    config.model.update(d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                        num_decoder_layers=1, max_len=64)
  config.train.update(num_steps=steps, warmup_steps=1, log_every=steps, eval_every=steps,
                      eval_samples=0, checkpoint_every=steps)
  config.decode.max_len = 20
  return config


def train(config, workdir: pathlib.Path, progress: bool = True) -> dict:
  """Train `config` in `workdir` and return the final metrics (kept in `train_done.json`).

  A run that reached `train.num_steps` before is skipped; an unfinished one resumes where it
  stopped, as `attnjax train` does.
  """
  done = workdir / "train_done.json"
  before = 0.0  # seconds spent training in earlier sessions of a run trained further now
  if done.exists():
    metrics = json.loads(done.read_text())
    if metrics["step"] >= config.train.num_steps:
      print(f"  {workdir}: done before ({metrics['step']} steps), skipped", flush=True)
      return metrics
    before = metrics.get("seconds_total", metrics.get("seconds_last_session", 0.0))
  from attnjax.train.loop import train_and_evaluate
  print(f"  {workdir}: training to step {config.train.num_steps}", flush=True)
  start = time.perf_counter()
  metrics = train_and_evaluate(config, workdir, progress=progress)
  metrics["seconds_last_session"] = round(time.perf_counter() - start, 1)
  metrics["seconds_total"] = round(before + metrics["seconds_last_session"], 1)
  done.write_text(json.dumps(metrics, indent=2) + "\n")
  return metrics


def score_test(workdir: pathlib.Path, width: int = 5, batch_size: int = 64, test_data=None) -> dict:
  """Test BLEU, BLEU per `width`-token source-length bin (greedy) and test perplexity; kept in
  `experiment_test.json`, the sources, references and hypotheses in `experiment_test.tsv`.

  `test_data`: the data section whose test split to translate (default: the workdir's own).
  Sources are decoded sorted by length, so each batch is padded to about its own length.
  """
  path = workdir / "experiment_test.json"
  done = workdir / "train_done.json"
  if path.exists():
    report = json.loads(path.read_text())
    if not done.exists() or report["step"] == json.loads(done.read_text())["step"]:
      return report  # else the run has trained further since: score it again
  from attnjax import trained as trained_lib
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  trained = trained_lib.load(workdir)
  data_cfg = test_data if test_data is not None else trained.config.data
  pairs = pipeline.load_pairs(data_cfg, "test", prepare(data_cfg, progress=False))
  pairs.sort(key=lambda pair: len(pair[0].split()))
  start = time.perf_counter()
  report = trained.evaluate(pairs, beam=1, bucket_width=width, batch_size=batch_size)
  hyps = report.pop("hypotheses")
  report.update(step=trained.step, test_data=data_cfg.name, decode_seconds=round(time.perf_counter() - start, 1),
                ppl=trained.perplexity(data_cfg, "test"))
  path.write_text(json.dumps(report, indent=2) + "\n")
  (workdir / "experiment_test.tsv").write_text("".join(f"{s}\t{r}\t{h}\n" for (s, r), h in zip(pairs, hyps)))
  print(f"  {workdir}: test BLEU {report['bleu']:.2f} on {len(pairs)} sentences "
        f"({report['decode_seconds']:.0f} s)", flush=True)
  return report


def mean_std(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return "–"
  if len(values) == 1:
    return f"{values[0]:.2f}"
  return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(header: list[str], rows: list[list]) -> str:
  """A markdown table; floats with two decimals."""
  cell = lambda x: f"{x:.2f}" if isinstance(x, float) else str(x)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def save_figure(fig, path: pathlib.Path) -> None:
  """Tight layout, 120 dpi PNG, figure closed (the reports draw many)."""
  import matplotlib.pyplot as plt
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def save_curves(fig, ax, path: pathlib.Path, legend_columns: int = 1) -> None:
  """A figure of validation curves: log perplexity against the training step, saved."""
  ax.set_xlabel("training step")
  ax.set_ylabel("validation perplexity")
  ax.set_yscale("log")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=legend_columns)
  save_figure(fig, path)


def report_main(name: str, doc: str, write, argv=None) -> int:
  """The `python -m experiments.<name>.report` entry point: the runs of --preset -> tables and plots."""
  args = parser(name, doc).parse_args(argv)
  write(runs_dir(args), args.preset, args.report_dir)
  return 0
