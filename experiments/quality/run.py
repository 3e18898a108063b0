r"""Experiment 6: how long each family takes to reach a translation quality (Chapter 3; Vaswani
et al. 2017, Table 2, which gives training cost in FLOPs beside BLEU).

    python -m experiments.quality.run --preset cpu     # then: python -m experiments.quality.report

Chapter 3's sweep (experiments/parallelism) times one training step; this experiment asks what
a user pays for a model that translates well. Each family, at its config's defaults, is
trained on one corpus with the same batches (the data section and its seed are shared) for
the same number of steps, from several seeds (`config.seed`: the initialisation, dropout and
the order of the batches), validating every `eval_every` steps: perplexity on the validation
split and greedy BLEU on its first `eval_samples` sentences. The training log carries, beside
each validation, the wall time spent training so far (validation excluded, compilation
included), the target tokens and the FLOPs (`attnjax.train.loop`), so that the report reads
off each run the time, steps, tokens and FLOPs at which it first reaches the target
perplexity and the target BLEU, and draws the learning curves against time and FLOPs.

Families, by name (a new one joins with one line in FAMILIES):
  rnn_seq2seq       an LSTM encoder-decoder without attention (`configs/rnn_seq2seq.py`)
  rnn_attention     the LSTM with Luong's general score and input feeding (`configs/rnn_luong.py`)
  mingru_attention  minGRU, walked in parallel over time, with Luong attention after its cells
                    (`configs/rnn_min.py`; Feng et al. 2024)
  transformer       the Transformer (`configs/transformer.py:size=small`)
Workdirs go to `<out>/<preset>/<family>-seed<s>` (the names `--list` prints, seed-major: every
family's seed 0 first, so that a run cut short still has the pilot); interrupted runs resume.
Each finished run's result files are kept in `<report_dir>/runs_<preset>/<name>/`, from which
the report is built; a run kept there is finished and skipped, so the experiment goes on
across machines from what is committed (the report needs no checkpoint). The data overrides
(`--config.data.FIELD=VALUE`) apply to every run, so the experiment runs on a user's corpus.

Presets:
  smoke  every family tiny on numbers:fr, seeds 0 and 1, 6 steps validated every 2: seconds
         (tests/test_quality.py).
  cpu    `en_fr_synth:quick` (20,000 pairs of at most 25 words), batch 64, 1,200 steps
         validated every 100 with BLEU on 200 sentences, seeds 0-2: 12 runs, about 2 hours on
         2 cores.
  full   `en_fr_synth:long50`, batch 64, 6,000 steps validated every 250 with BLEU on 500
         sentences, seeds 0-2 (a GPU).
"""

import json
import sys

from experiments import common
from experiments.quality import report

FAMILIES = {
    "rnn_seq2seq": "configs/rnn_seq2seq.py",
    "rnn_attention": "configs/rnn_luong.py:score=general",
    "mingru_attention": "configs/rnn_min.py:cell=gru,attention=luong",
    "transformer": "configs/transformer.py:size=small",
}
SETTINGS = {
    "smoke": dict(seeds=(0, 1), steps=6, eval_every=2, eval_samples=8),
    "cpu": dict(seeds=(0, 1, 2), steps=1200, eval_every=100, eval_samples=200,
                corpus="en_fr_synth:quick"),
    "full": dict(seeds=(0, 1, 2), steps=6000, eval_every=250, eval_samples=500,
                 corpus="en_fr_synth:long50"),
}


def run_name(family: str, seed: int) -> str:
  return f"{family}-seed{seed}"


def grid(preset: str) -> dict[str, tuple[str, int]]:
  """{run name: (family, seed)}, seed-major."""
  return {run_name(family, seed): (family, seed) for seed in SETTINGS[preset]["seeds"] for family in FAMILIES}


def make_config(family: str, seed: int, preset: str, data: dict | None = None):
  """The run's config: the family's defaults, the preset's corpus, steps and validation;
  `data`: overrides of its data section (another corpus)."""
  s = SETTINGS[preset]
  config = common.load_config(FAMILIES[family])
  config.seed = seed
  if preset == "smoke":
    config = common.make_tiny(config, "", s["steps"])
  else:
    config.data.name = s["corpus"]
    config.train.update(num_steps=s["steps"], checkpoint_every=s["steps"])
  config.train.update(eval_every=s["eval_every"], eval_samples=s["eval_samples"],
                      log_every=min(config.train.log_every, s["eval_every"]))
  config.data.update(data or {})
  return config


def parameters(workdir) -> int:
  """The trained model's parameter count, read from its checkpoint."""
  import attnjax
  import jax
  return int(sum(leaf.size for leaf in jax.tree.leaves(attnjax.load(workdir).variables["params"])))


def main(argv=None) -> int:
  args = common.parse(common.parser("quality", __doc__), argv)
  root = common.runs_dir(args)
  cells = grid(args.preset)
  kept = report.results_dir(args.report_dir, args.preset)

  def do(name):
    family, seed = cells[name]
    workdir = root / name
    done = kept / name / "train_done.json"
    if done.exists() and json.loads(done.read_text())["step"] >= SETTINGS[args.preset]["steps"]:
      print(f"  {name}: kept in {kept} (finished before), skipped", flush=True)
      return
    common.train(make_config(family, seed, args.preset, args.data), workdir, progress=args.preset != "smoke")
    common.keep_results(workdir, kept, {"family": family, "seed": seed, "config": FAMILIES[family],
                                        "parameters": parameters(workdir)})
    (kept / "grid.json").write_text(json.dumps({"runs": list(cells)}, indent=2) + "\n")

  return common.run_all("quality", list(cells), do, args,
                        lambda: report.write(kept, args.preset, args.report_dir))


if __name__ == "__main__":
  sys.exit(main())
