"""What the experiments share: their flags (presets, data overrides, the runs to do), configs
from config files, training that skips finished runs, the kept results with their provenance,
and markdown tables. What a run is measured by lives in `attnjax.evaluators`.

Every experiment is a list of named runs (`--list`); `--only` and `--shard I/N` pick some of
them, so that the runs of one preset can go to several jobs of a cluster at once, each into
its own folder under the shared `--out` (a workdir's lock keeps two jobs off one run). The
report script assembles whatever has finished and names what has not.

The scripts fail as the `attnjax` command does: an attnjax error or an OSError (a folder that
cannot be written, a file missing) is one line on stderr and exit status 1, not a traceback.
"""

import argparse
import importlib.util
import json
import pathlib
import re
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
PRESETS = ("smoke", "cpu", "full")


def _fail_in_one_line(kind, err, tb, traceback_hook=sys.excepthook):
  """`sys.excepthook` for the scripts that import this module: a failure the user can fix (an
  attnjax error, an OSError) becomes `python -m experiments.X.run: error: ...`, one line,
  where the script ran as a command; anything else is a bug and keeps its traceback."""
  from attnjax.errors import Error
  if not issubclass(kind, (Error, OSError)):
    traceback_hook(kind, err, tb)
    return
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  prog = f"python -m {spec.name}" if spec else pathlib.Path(sys.argv[0]).name
  print(f"{prog}: error: {' '.join(str(err).split()) or kind.__name__}", file=sys.stderr)


sys.excepthook = _fail_in_one_line


def parser(name: str, doc: str, runs: bool = True, script: str = "run") -> argparse.ArgumentParser:
  """`python -m experiments.<name>.<script>`'s flags: --preset, --out (runs, one folder per preset
  inside), --data_dir, --report_dir; with `runs`, --list, --only and --shard too. Data overrides
  (`--config.data.FIELD=VALUE`) are read by `parse`."""
  p = argparse.ArgumentParser(prog=f"python -m experiments.{name}.{script}",
                              description=doc.split("\n\n")[0], epilog=DATA_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", choices=PRESETS, default="cpu",
                 help="smoke: seconds, for the tests; cpu: this machine; full: a GPU")
  p.add_argument("--out", default=f"runs/experiments/{name}",
                 help="where the runs go, in a folder per preset (default %(default)s)")
  p.add_argument("--data_dir", default="", help="data.data_dir for the corpora (default: the config's)")
  p.add_argument("--report_dir", default=str(REPO / "experiments" / name),
                 help="where the report's tables and plots go (default: the experiment's folder)")
  if runs:
    p.add_argument("--list", action="store_true",
                   help="print the runs --only and --shard pick (all by default), one name a line, and exit")
    p.add_argument("--only", default="", metavar="NAME[,NAME]", help="do only these runs (names from --list)")
    p.add_argument("--shard", default="", metavar="I/N",
                   help="do every N-th run from the I-th (0 <= I < N): one task of a job array")
  return p


DATA_HELP = """data overrides, applied to every model the experiment trains or scores:
  --config.data.FIELD=VALUE   any field of a config's data section, as `attnjax train` takes it,
                              e.g. --config.data.name=files --config.data.files_dir=DIR
                              --config.data.src_lang=de --config.data.tgt_lang=en"""


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
  """`p`'s flags, and the data overrides among the rest as `args.data` ({field: value}, typed
  as the field's default); anything else is a usage error."""
  args, rest = p.parse_known_args(argv)
  from attnjax import config as config_lib
  defaults = config_lib.base().data
  args.data = {}
  for arg in rest:
    match = re.fullmatch(r"--config\.data\.(\w+)=(.*)", arg, re.DOTALL)
    if not match:
      p.error(f"unrecognized argument {arg!r}; data overrides are --config.data.FIELD=VALUE")
    field, value = match.groups()
    if field not in defaults:
      p.error(f"--config.data.{field}: the data section has no field {field!r} "
              f"(it has {', '.join(sorted(defaults))})")
    try:
      args.data[field] = typed(value, defaults[field])
    except ValueError:
      p.error(f"--config.data.{field}={value}: not a {type(defaults[field]).__name__}")
  if args.data_dir:
    args.data.setdefault("data_dir", args.data_dir)
  return args


def typed(value: str, default):
  if isinstance(default, bool):
    if value.lower() in ("1", "true", "yes"):
      return True
    if value.lower() in ("0", "false", "no"):
      return False
    raise ValueError(value)
  return type(default)(value)


def with_data(config, args):
  """`config` with the command line's data overrides."""
  config.data.update(args.data)
  return config


def corpus_of(workdir) -> str:
  """The corpus a workdir's model was trained on, as a report names it."""
  data = json.loads((pathlib.Path(workdir) / "config.json").read_text())["data"]
  return f"`{data['name']}`" + (f" (`{data['files_dir']}`)" if data["name"] == "files" else "")


def select(names: list[str], args) -> list[str]:
  """The runs of `names` that --only and --shard leave; a usage error for an unknown name or shard."""
  if args.only:
    wanted = [n for n in args.only.split(",") if n]
    unknown = [n for n in wanted if n not in names]
    if unknown:
      sys.exit(f"--only: no run {', '.join(unknown)} in this preset; --list names them")
    names = [n for n in names if n in wanted]
  if args.shard:
    match = re.fullmatch(r"(\d+)/(\d+)", args.shard)
    if not match or not 0 <= int(match[1]) < int(match[2]):
      sys.exit(f"--shard={args.shard}: want I/N with 0 <= I < N, e.g. 0/4")
    names = names[int(match[1])::int(match[2])]
  return names


def run_all(experiment: str, names: list[str], do, args, write_report, report_command: str = "") -> int:
  """--list, or `do(name)` for each selected run, then the report (unless a subset was asked
  for: the jobs of a sweep leave the report to a job that runs after them all, by
  `report_command`, the experiment's report script by default)."""
  chosen = select(names, args)
  if args.list:
    print("\n".join(chosen))
    return 0
  for i, name in enumerate(chosen, 1):
    print(f"[{i}/{len(chosen)}] {name}", flush=True)
    do(name)
  if args.only or args.shard:
    report_command = report_command or (f"python -m experiments.{experiment}.report --preset "
                                         f"{args.preset} --out {args.out}")
    print(f"done: {len(chosen)} of {len(names)} runs; the report assembles them: {report_command}", flush=True)
    return 0
  write_report()
  return 0


def missing(names: list[str], finished) -> str:
  """A report's line on the runs not finished yet, or ''."""
  left = [n for n in names if n not in finished]
  return f"\nNot finished yet ({len(left)} of {len(names)} runs): {', '.join(left)}.\n" if left else ""


def runs_dir(args) -> pathlib.Path:
  return pathlib.Path(args.out) / args.preset


RESULT_FILES = ("config.json", "train_done.json", "metrics.jsonl", "experiment_test.json", "experiment_test.tsv",
                "experiment_attention.json")


def keep_results(workdir: pathlib.Path, store: pathlib.Path, cell: dict | None = None) -> pathlib.Path:
  """A finished run's result files (no checkpoints: a few hundred kB) copied to
  `store/<run name>/`, the experiment's own folder, so that its report can be rebuilt on any
  machine and across sessions from what is committed; with them `provenance.json`: the run's
  grid cell (`cell`: what the report needs to know of the run), the command, commit, package
  versions and machine (`provenance`)."""
  kept = store / workdir.name
  kept.mkdir(parents=True, exist_ok=True)
  for name in RESULT_FILES:
    if (workdir / name).exists():
      (kept / name).write_bytes((workdir / name).read_bytes())
  (kept / "provenance.json").write_text(json.dumps({"cell": cell or {}, **provenance()}, indent=2) + "\n")
  return kept


SOURCES = ("*.py", "*.sh", "pyproject.toml", "Makefile")  # what a kept result's provenance checks for changes


def provenance() -> dict:
  """What a kept result was made with: the command, the commit (and whether its code had
  changes: tracked sources, not the results an experiment rewrites as it goes), the package
  versions and the machine (a CPU's model and cores, or the device)."""
  import subprocess
  from importlib import metadata
  import jax
  from attnjax.speed import bench

  def git(*args):
    try:
      return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                            timeout=10).stdout.strip() or None
    except OSError:
      return None
  versions = {"python": sys.version.split()[0]}
  for package in ("jax", "jaxlib", "flax", "optax", "numpy", "sacrebleu"):
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = None
  commit = git("rev-parse", "HEAD")
  return {"command": " ".join(["python", "-m", _command_module()] + sys.argv[1:]),
          "commit": commit, "tree_changed": bool(git("status", "--porcelain", "--untracked-files=no", "--", *SOURCES))
          if commit else None, "versions": versions, "machine": bench.device_name(jax.devices()[0])}


def _command_module() -> str:
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  return spec.name if spec and spec.name else pathlib.Path(sys.argv[0]).name


def machines(kept_runs) -> str:
  """The machines that kept runs name in their provenance, for a report's header; runs kept
  without it are counted as such."""
  named = []
  for run in kept_runs:
    path = pathlib.Path(run) / "provenance.json"
    named.append(json.loads(path.read_text())["machine"] if path.exists() else None)
  return describe_machines(named)


def describe_machines(named: list) -> str:
  """'cpu: AMD EPYC, 2 cores (3 runs); not recorded (1 run ...)' for a list of machines (None:
  a run kept before provenance was)."""
  known = [m for m in named if m is not None]
  unnamed = len(named) - len(known)
  parts = [f"{m} ({known.count(m)} run{'s' if known.count(m) > 1 else ''})" for m in dict.fromkeys(known)]
  if unnamed:
    parts.append(f"not recorded ({unnamed} run{'s' if unnamed > 1 else ''} kept before provenance was)")
  return "; ".join(parts)


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
  if config.model.family in ("rnn", "minrnn"):
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


def mean_std(values, digits: int = 2) -> str:
  """'mean ± std' of the values that are not None ('–' if none, the value alone if one)."""
  values = [v for v in values if v is not None]
  if not values:
    return "–"
  if len(values) == 1:
    return f"{values[0]:.{digits}f}"
  return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


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
