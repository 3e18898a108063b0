"""The runs that more than one experiment trains or reads, defined once: no experiment imports
another's run or report, and a run made by one is found by the others where it lies.

  Luong's RNN      experiment 3's runs (`scores`): each score, global or local, with or without
                   input feeding, one seed; experiment 2 trains the config of
                   `general-feed1-seed0` for its heatmaps, experiment 5 reads `dot-feed0-seed0`
  the Transformer  experiment 2's (`alignments`), which experiment 5 reads too
  smoke models     the tiny RNNsearch and Transformer of experiments 2 and 5's smoke presets
"""

import pathlib

from experiments import common

SCORES = ("dot", "general", "concat", "scaled_dot")
# Other models with Luong's global attention, named as a score so that their runs group and
# compare as the variants do: minGRU with the general score, read after the cells (no feeding).
LUONG_LIKE = {"mingru_general": "configs/rnn_min.py:cell=gru,attention=luong"}
LUONG_STEPS = {"smoke": 3, "cpu": 1000, "full": 3000}
EVALS = 5  # validation perplexity measured this many times along a Luong run

SMOKE_MODELS = {"bahdanau": "configs/rnn_bahdanau.py", "transformer": "configs/transformer.py:size=tiny"}
TRANSFORMER = "configs/transformer.py:size=small"
TRANSFORMER_STEPS = {"cpu": 1500, "full": 3000}


def luong_config(score: str, local: str, feed: int, seed: int, preset: str, data: dict | None = None):
  """Experiment 3's run of one variant and seed; `data`: overrides of its data section."""
  config = common.load_config(LUONG_LIKE[score] if score in LUONG_LIKE else
                              f"configs/rnn_luong.py:score={score},feed={feed},local={local or 'global'}")
  config.seed = seed
  steps = LUONG_STEPS[preset]
  if preset == "smoke":
    config = common.make_tiny(config, "", steps)
  else:
    config.train.update(num_steps=steps, eval_every=steps // EVALS, eval_samples=0,
                        checkpoint_every=steps)
  config.data.update(data or {})
  return config


def luong_run(score: str, local: str, feed: int, seed: int) -> str:
  """The name of experiment 3's run (its workdir under `runs/experiments/scores/<preset>/`)."""
  return f"{score}{'-local' + local if local else ''}-feed{feed}-seed{seed}"


def luong_workdir(out: pathlib.Path, preset: str, *cell) -> pathlib.Path:
  """Where experiment 3 trains the run of `cell` when its --out sits beside `out`'s."""
  return pathlib.Path(out).parent / "scores" / preset / luong_run(*cell)


def smoke_config(name: str, args):
  """A tiny model of SMOKE_MODELS on numbers:fr, 3 steps, with the command line's data overrides."""
  return common.with_data(common.make_tiny(common.load_config(SMOKE_MODELS[name]), "", 3), args)


def transformer_config(args):
  """Experiment 2's Transformer (2 layers of 4 heads) for a cpu or full preset."""
  config = common.with_data(common.load_config(TRANSFORMER), args)
  steps = TRANSFORMER_STEPS[args.preset]
  config.train.update(num_steps=steps, eval_every=steps // 3, eval_samples=0, checkpoint_every=steps)
  return config
