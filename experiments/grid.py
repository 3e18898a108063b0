r"""A user's own experiment: one config, fields with lists of values, seeds, evaluators.

    python -m experiments.grid --config configs/rnn_luong.py --grid model.hidden_dim=128,256 \
        train.learning_rate=1e-3,3e-4 --seeds 3 --evaluators bleu,attention
    python -m experiments.grid ... --list               # the runs, one name a line
    python -m experiments.grid ... --shard 0/4          # a quarter of them (a job array's task)
    python -m experiments.grid ... --report             # the report of what has finished

Every combination of the grid's values is trained from each seed (`config.seed` = 0 .. N-1),
with the data overrides applied to all (`--config.data.FIELD=VALUE`), then measured by the named
evaluators (`attnjax.evaluators`: bleu, attention). Runs go to
`<out>/<name>/<preset>/<field=value_..._seed<s>>` (`--list` prints the names); finished runs
are skipped, interrupted ones resume, so the same command continues a grid. Each finished run's
result files and provenance (command, commit, versions, machine) are kept in
`<report_dir>/runs_<preset>/`, from which the report `results_<preset>.md` is built: each grid
point's figures as mean ± standard deviation over seeds, and each point against the best (by
mean test BLEU) by Welch's t over the per-seed BLEU with Holm's correction over the table.

Presets: `cpu` and `full` train the config as given (`--steps N` sets its steps); `smoke`
shrinks it to a tiny model on numbers:fr for 3 steps (the tests).
"""

import argparse
import itertools
import json
import pathlib
import statistics
import sys

from experiments import common

SMOKE_STEPS = 3
EVALS = 5  # validation perplexity measured this many times along a run, with --steps


def _parser() -> argparse.ArgumentParser:
  p = common.parser("grid", __doc__)
  p.prog = "python -m experiments.grid"
  p.add_argument("--config", required=True, metavar="FILE[:ARGS]",
                 help="the config every run starts from, e.g. configs/rnn_luong.py:score=dot")
  p.add_argument("--grid", nargs="*", default=[], metavar="FIELD=V1,V2",
                 help="a config field and its values, e.g. model.hidden_dim=128,256; several "
                      "fields make every combination")
  p.add_argument("--seeds", type=int, default=3, help="training seeds per grid point (default %(default)s)")
  p.add_argument("--steps", type=int, default=0, help="training steps of every run (default: the config's)")
  p.add_argument("--evaluators", default="bleu", metavar="NAME[,NAME]",
                 help="what each run is measured by: bleu, attention (default %(default)s)")
  p.add_argument("--name", default="", help="the grid's name: its folder under --out (default: the config file's name)")
  p.add_argument("--report", action="store_true", help="only write the report of the finished runs")
  p.set_defaults(out="runs/experiments/grid", report_dir="")
  helps = {"out": "where the runs go: <out>/<name>/<preset>/ (default %(default)s)",
           "report_dir": "where the kept runs and the report go (default: <out>/<name>)"}
  for action in p._actions:
    action.help = helps.get(action.dest, action.help)
  return p


def _load_config(spec: str):
  """The config of `spec`, a file (relative to here or to the repository) with its argument."""
  from attnjax.config import ConfigError
  path, _, arg = spec.partition(":")
  if pathlib.Path(path).is_file():
    path = str(pathlib.Path(path).resolve())
  elif not (common.REPO / path).is_file():
    raise ConfigError(f"--config {spec}: no config file {path}")
  return common.load_config(f"{path}:{arg}" if arg else path)


def _axes(config, fields: list[str], p: argparse.ArgumentParser) -> dict[str, list]:
  """{dotted field: its values, typed as the config's value}, each a usage error if it is not."""
  axes = {}
  for item in fields:
    field, sep, values = item.partition("=")
    if not sep or not values:
      p.error(f"--grid {item}: want FIELD=V1,V2,..., e.g. model.hidden_dim=128,256")
    section, leaf = _section(config, field)
    if section is None:
      p.error(f"--grid {item}: the config has no field {field!r}")
    if field in axes:
      p.error(f"--grid: {field} given twice")
    axes[field] = []
    for value in values.split(","):
      try:
        axes[field].append(common.typed(value, section[leaf]))
      except ValueError:
        p.error(f"--grid {item}: {value!r} is not of the field's type, {type(section[leaf]).__name__}")
  return axes


def _section(config, field: str):
  """(the section holding the dotted `field`, its last name), or (None, name) if there is none."""
  *parents, leaf = field.split(".")
  section = config
  for part in parents:
    section = section.get(part) if hasattr(section, "get") else None
  return (section, leaf) if hasattr(section, "keys") and leaf in section else (None, leaf)


def cells(axes: dict[str, list], seeds: int) -> dict[str, dict]:
  """{run name: {"point": {field: value}, "seed": s}}, seed-major (every point's seed 0 first)."""
  out = {}
  for seed in range(seeds):
    for values in itertools.product(*axes.values()):
      point = dict(zip(axes, values))
      name = "_".join(f"{field}={value}" for field, value in point.items())
      out[f"{name}_seed{seed}" if name else f"seed{seed}"] = {"point": point, "seed": seed}
  return out


def make_config(base, cell: dict, args):
  """The run's config: the base, shrunk for smoke or given --steps, then its grid point and seed."""
  config = base.copy_and_resolve_references()
  if args.preset == "smoke":
    config = common.make_tiny(config, "", SMOKE_STEPS)
  elif args.steps:
    config.train.update(num_steps=args.steps, eval_every=max(1, args.steps // EVALS),
                        checkpoint_every=args.steps)
  for field, value in cell["point"].items():
    section, leaf = _section(config, field)
    section[leaf] = value
  config.seed = cell["seed"]
  return common.with_data(config, args)


def main(argv=None) -> int:
  p = _parser()
  args = common.parse(p, argv)
  from attnjax import evaluators
  if args.seeds < 1:
    p.error(f"--seeds {args.seeds}: want at least 1")
  names = [n for n in args.evaluators.split(",") if n]
  unknown = [n for n in names if n not in evaluators.REPORTED]
  if unknown or not names:
    p.error(f"--evaluators {args.evaluators}: no evaluator {', '.join(unknown) or '(none)'}; "
            f"there are {', '.join(evaluators.REPORTED)}")
  base = _load_config(args.config)
  axes = _axes(base, args.grid, p)
  name = args.name or pathlib.Path(args.config.partition(":")[0]).stem
  grid_dir = pathlib.Path(args.out) / name
  root = grid_dir / args.preset
  report_dir = pathlib.Path(args.report_dir or grid_dir)
  kept = report_dir / f"runs_{args.preset}"
  spec = {"config": args.config, "grid": {f: [str(v) for v in vs] for f, vs in axes.items()},
          "seeds": args.seeds, "steps": args.steps, "evaluators": names, "data": args.data}
  grid = cells(axes, args.seeds)
  if args.report:
    return 0 if write(kept, args.preset, report_dir) else 1
  _check_same_grid(kept, spec)

  def do(run):
    workdir = root / run
    common.train(make_config(base, grid[run], args), workdir, progress=args.preset != "smoke")
    for evaluator in names:
      evaluators.evaluate(workdir, evaluator, **_arguments(evaluator, args))
    common.keep_results(workdir, kept, grid[run])
    (kept / "grid.json").write_text(json.dumps({**spec, "runs": list(grid)}, indent=2) + "\n")

  again = " ".join(["python -m experiments.grid", *(argv if argv is not None else sys.argv[1:])])
  return common.run_all("grid", list(grid), do, args, lambda: write(kept, args.preset, report_dir),
                        report_command=f"{again} --report")


def _arguments(evaluator: str, args) -> dict:
  if evaluator == "bleu":
    return {"width": 10, "batch_size": 256 if args.preset == "smoke" else 64}
  return {"data_dir": args.data_dir}


def _check_same_grid(kept: pathlib.Path, spec: dict) -> None:
  """A grid's runs are kept beside runs of the same grid only: a report mixing two would lie."""
  from attnjax.config import ConfigError
  path = kept / "grid.json"
  if path.exists():
    before = {k: v for k, v in json.loads(path.read_text()).items() if k != "runs"}
    if before != spec:
      changed = ", ".join(k for k in spec if before.get(k) != spec[k])
      raise ConfigError(f"{kept} holds the runs of another grid (its {changed} differ); give "
                        "another --name, --out or --report_dir")


def _load(kept: pathlib.Path) -> dict[tuple, list[dict]]:
  """(grid point's values) -> its finished runs' figures, by seed."""
  groups: dict[tuple, list[dict]] = {}
  for run in sorted(kept.iterdir()) if kept.is_dir() else []:
    if not (run / "provenance.json").exists() or not (run / "train_done.json").exists():
      continue
    cell = json.loads((run / "provenance.json").read_text())["cell"]
    done = json.loads((run / "train_done.json").read_text())
    figures = {"run": run, "seed": cell["seed"], "step": done["step"], "val_ppl": done.get("val_ppl")}
    for file, fields in (("experiment_test.json", ("bleu", "chrf", "ppl")),
                         ("experiment_attention.json", ("aer", "largest_weight"))):
      if (run / file).exists():
        measured = json.loads((run / file).read_text())
        figures.update({field: measured.get(field) for field in fields})
    groups.setdefault(tuple(cell["point"].items()), []).append(figures)
  for runs in groups.values():
    runs.sort(key=lambda r: r["seed"])
  return groups


COLUMNS = (("val_ppl", "val ppl", 2), ("ppl", "test ppl", 2), ("bleu", "test BLEU", 2), ("chrf", "chrF", 2),
           ("aer", "AER", 3), ("largest_weight", "largest weight", 2))


def write(kept: pathlib.Path, preset: str, report_dir: pathlib.Path) -> pathlib.Path | None:
  """`results_<preset>.md` from the kept runs: a pure function of them."""
  from attnjax.analysis import stats
  groups = _load(kept)
  if not groups:
    print(f"no finished runs under {kept}", file=sys.stderr)
    return None
  spec = json.loads((kept / "grid.json").read_text())
  fields = [field for field, _ in next(iter(groups))]
  columns = [c for c in COLUMNS if any(r.get(c[0]) is not None for runs in groups.values() for r in runs)]
  label = lambda point: ", ".join(f"{f}={v}" for f, v in point) or "the config"
  rows = [[*(v for _, v in point), len(runs), runs[0]["step"],
           *(common.mean_std([r.get(key) for r in runs], digits) for key, _, digits in columns)]
          for point, runs in groups.items()]
  md = [f"# Grid `{kept.parent.name}` ({preset} preset)\n",
        f"`python -m experiments.grid --config {spec['config']}"
        + "".join(f" --grid {f}={','.join(vs)}" for f, vs in spec["grid"].items() if vs)
        + f" --seeds {spec['seeds']}" + (f" --steps {spec['steps']}" if spec["steps"] else "")
        + f" --evaluators {','.join(spec['evaluators'])}"
        + "".join(f" --config.data.{k}={v}" for k, v in spec["data"].items() if k != "data_dir")
        + f" --preset {preset}`\n",
        f"Machine: {common.machines(r['run'] for runs in groups.values() for r in runs)}. "
        f"Corpus: {common.corpus_of(next(iter(groups.values()))[0]['run'])}. Figures are the mean ± "
        "standard deviation over the seeds; test BLEU is greedy (sacreBLEU).\n",
        common.table([*fields, "seeds", "steps", *(title for _, title, _ in columns)], rows)]
  finished = {r["run"].name for runs in groups.values() for r in runs}
  if common.missing(spec["runs"], finished):
    md.append(common.missing(spec["runs"], finished).strip("\n") + "\n")
  scored = {point: [r["bleu"] for r in runs] for point, runs in groups.items() if all(r.get("bleu") is not None for r in runs)}
  if len(scored) > 1:
    best = max(scored, key=lambda point: statistics.mean(scored[point]))
    tests = stats.compare(scored[best], {point: bleus for point, bleus in scored.items() if point != best})
    md.append("## Against the best\n\nThe grid point with the best mean test BLEU against each other, "
              "over training seeds: Welch's t on the per-seed BLEU, Holm's correction over this "
              f"table; 'significant' only where the corrected p < {stats.ALPHA}.\n\n"
              + common.table(["best", "against", "seeds", "difference", "Welch p", "Holm p", "verdict"],
                             [[label(best), label(point), test["seeds"], f"{test['difference']:+.2f}",
                               stats.format_p(test["p"]), stats.format_p(test["p_holm"]), test["verdict"]]
                              for point, test in tests.items()]))
  report_dir.mkdir(parents=True, exist_ok=True)
  path = report_dir / f"results_{preset}.md"
  path.write_text("\n".join(md))
  print(f"wrote {path}", flush=True)
  return path


if __name__ == "__main__":
  sys.exit(main())
