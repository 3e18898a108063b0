r"""Experiment 5: is attention load-bearing? The attention replaced, heads removed, and
alignments read one step late (Jain & Wallace 2019; Michel et al. 2019; Chen et al. 2020).

    python -m experiments.interventions.run --preset cpu   # then: python -m experiments.interventions.report

Three attentive models on en_fr_synth:quick, each scored on its 1,000 test pairs:
  luong-dot    Luong global dot attention without input feeding (`configs/rnn_luong.py:
               score=dot,feed=0`), experiment 3's run `dot-feed0-seed0`;
  rnnsearch    RNNsearch (`configs/rnn_bahdanau.py`), trained here as experiment 3 trains
               (batch 64, 1,000 steps);
  transformer  `configs/transformer.py:size=small` (2 layers of 4 heads), experiment 2's.
A model another experiment has trained (under its own `--out`, `runs/experiments/<name>/`) is
read from there; one it has not is trained here into that same place, so both find it.

For each model: teacher-forced test perplexity and greedy test BLEU with the cross-attention
as trained, `uniform`, `permute` (seeds 0, 1, 2) and `gold` (perplexity only: the gold is
known for the reference), the AER of its own attention against the gold links and Shift-Att's
AER (step j+1 read as word j's), per layer and head. For the Transformer also: every head's
importance (Michel et al. 2019: mean |dL/dgate| over the validation batches) per attention
kind, and the pruning curve: test BLEU as heads are switched off in order of importance
(least important first) and in a random order, over all 24 heads.

Presets:
  smoke  tiny RNNsearch and Transformer on numbers:fr, 3 steps (tests/test_experiments.py);
         numbers has no gold links: gold perplexity is skipped and the monotone diagonal
         stands in for the AER (its figures mean nothing).
  cpu    as above. On 2 cores: training what is missing (Luong dot and RNNsearch about 7
         minutes each, the Transformer about 10) and about 15 minutes of scoring.
  full   the same models at experiments 2's and 3's full presets (a GPU).
Results are kept as `<report_dir>/runs_<preset>/<model>.json`, from which the report is built.
"""

import json
import pathlib
import sys

from experiments import common, shared

PERMUTE_SEEDS = (0, 1, 2)
BLEU_SENTENCES = {"smoke": 8, "cpu": 1000, "full": 1000}
PRUNE_SENTENCES = {"smoke": 8, "cpu": 300, "full": 1000}  # per point of the pruning curve
PRUNE_STEP = {"smoke": 1, "cpu": 2, "full": 2}            # heads switched off between points


def models(args) -> dict:
  """{name: (config, workdir)}: the models the preset scores and where they are trained."""
  out = pathlib.Path(args.out).parent  # runs/experiments
  if args.preset == "smoke":
    return {name: (shared.smoke_config(name, args), common.runs_dir(args) / name) for name in shared.SMOKE_MODELS}
  dot = shared.luong_config("dot", "", 0, 0, args.preset, args.data)
  rnnsearch = common.with_data(common.load_config("configs/rnn_bahdanau.py"), args)
  rnnsearch.train.update({k: dot.train[k] for k in ("num_steps", "eval_every", "eval_samples",
                                                     "checkpoint_every")})
  return {
      "luong-dot": (dot, shared.luong_workdir(pathlib.Path(args.out), args.preset, "dot", "", 0, 0)),
      "rnnsearch": (rnnsearch, common.runs_dir(args) / "rnnsearch"),
      "transformer": (shared.transformer_config(args), out / "alignments" / args.preset / "transformer"),
  }


def measure(workdir: pathlib.Path, preset: str, data_dir: str = "") -> dict:
  """Every figure of one model (see the module's docstring), as a dict for the report."""
  import numpy as np
  from attnjax.config import ConfigError
  from attnjax.data import pipeline
  from attnjax.infer import trained as trained_lib
  from attnjax.models import Intervention, head_gates
  from attnjax.analysis.gold import gold_for
  model = trained_lib.load(workdir)
  data = model.config.data
  pairs = pipeline.load_pairs(data, "test")[:BLEU_SENTENCES[preset]]
  kinds = {"own": None, "uniform": Intervention("uniform"),
           **{f"permute-{s}": Intervention("permute", seed=s) for s in PERMUTE_SEEDS},
           "gold": Intervention("gold")}
  result = {"workdir": str(workdir), "step": model.step, "corpus": data.name, "test_pairs": len(pairs),
            "perplexity": {}, "bleu": {}}
  for name, intervention in kinds.items():
    try:
      result["perplexity"][name] = model.perplexity(data, "test", intervention)
    except ConfigError:  # no gold links in this corpus
      result["perplexity"][name] = None
    if name != "gold":
      result["bleu"][name] = model.evaluate(pairs, beam=1, batch_size=100, intervention=intervention)["bleu"]
    print(f"  {workdir.name} {name}: perplexity {result['perplexity'][name]}, "
          f"BLEU {result['bleu'].get(name)}", flush=True)
  gold_pairs, gold = gold_for(model, data_dir)
  for key, shift in (("aer", False), ("shifted_aer", True)):
    report = model.alignment_error(gold_pairs, gold, shift=shift)
    result[key] = {"mean": report["aer"]["argmax"], "per_head": report["per_head"]["argmax"],
                   "diagonal": report["diagonal"]}
  try:
    head_gates(model.model)  # the model contract says whether it has heads to gate
    has_heads = True
  except ValueError:
    has_heads = False
  if has_heads:
    importance = model.head_importance(data, "validation")
    result["importance"] = {kind: value.tolist() for kind, value in importance.items()}
    heads = [(kind, l, h) for kind, value in importance.items()
             for l in range(value.shape[0]) for h in range(value.shape[1])]
    by_importance = sorted(heads, key=lambda head: importance[head[0]][head[1], head[2]])
    randomly = [heads[i] for i in np.random.default_rng(0).permutation(len(heads))]
    prune_pairs = pairs[:PRUNE_SENTENCES[preset]]
    result["pruning"] = {"sentences": len(prune_pairs)}
    for order_name, order in (("importance", by_importance), ("random", randomly)):
      curve = []
      for removed in range(0, len(order) + 1, PRUNE_STEP[preset]):
        off = {}
        for kind, l, h in order[:removed]:
          off.setdefault(kind, []).append((l, h))
        bleu = model.evaluate(prune_pairs, beam=1, batch_size=100, heads=off)["bleu"]
        curve.append([removed, bleu])
        print(f"  {workdir.name} pruning by {order_name}: {removed} heads off, BLEU {bleu:.2f}", flush=True)
      result["pruning"][order_name] = {"order": [list(head) for head in order], "curve": curve}
  return result


def main(argv=None) -> int:
  args = common.parse(common.parser("interventions", __doc__), argv)
  chosen = models(args)
  from experiments.interventions import report
  store = report.results_dir(args.report_dir, args.preset)

  def do(name):
    config, workdir = chosen[name]
    from attnjax import evaluators
    common.train(config, workdir, progress=args.preset != "smoke")
    evaluators.kept(store / f"{name}.json", evaluators.step_of(workdir),
                    {"preset": args.preset},  # the sentences scored, the pruning curve's points
                    lambda: {**measure(workdir, args.preset, args.data_dir), "provenance": common.provenance()},
                    indent=1)

  return common.run_all("interventions", list(chosen), do, args,
                        lambda: report.write(store, args.preset, args.report_dir))


if __name__ == "__main__":
  sys.exit(main())
