r"""Experiment 1: the bottleneck against attention, BLEU by sentence length (Bahdanau et al. 2015, Figure 2).

    python -m experiments.bottleneck.run --preset cpu      # then: python -m experiments.bottleneck.report

Bahdanau's two families, each trained on `en_fr_synth:long30` and `:long50` (the -30 and -50
models: training sources of at most 30 or 50 words):
  encdec    RNNencdec (`configs/rnn_encdec.py`): no attention; the encoder's fixed summary
            enters every decoder step (Cho et al. 2014, Bahdanau's baseline).
  bahdanau  RNNsearch (`configs/rnn_bahdanau.py`): additive attention over every encoder state.
and a recurrence that is linear in its state, trained in parallel over time (Feng et al. 2024):
  mingru        minGRU without attention (`configs/rnn_min.py:cell=gru,attention=none`): the
                encoder's final states start the decoder and its top one enters every step.
  mingru_luong  minGRU with Luong attention after the cells (`...:attention=luong`).
Does the bottleneck stay when the recurrence is linear, and does attention still rescue it?
The `full` preset adds Sutskever's seq2seq with reversed source words
(`configs/rnn_seq2seq.py:reverse=1`), Luong attention and the Transformer.
All are scored, greedy, on one test set: long50's, balanced over 5-word source-length bins
up to 75 words (40 sentences a bin; a source in any preset's test split is in no preset's
training split, since the split is a hash of the source). Workdirs go to
`<out>/<preset>/<model>-<30|50>` (the names `--list` prints); a finished run is skipped and an
interrupted one resumes, so the command can be rerun.

On another corpus (`--config.data.name=files --config.data.files_dir=DIR`, or any data field),
each model of the preset is trained once on that corpus as it is (runs `<model>-own`) and
tested on its test split; the report's length bins come from that test set's lengths.

Presets:
  smoke  two runs, encdec-30 and bahdanau-50, both tiny on numbers:fr for 3 steps: seconds
         (tests/test_experiments.py).
  cpu    the four models of Figure 2 at the configs' sizes (embed 128, hidden 256, a
         bidirectional LSTM encoder), batch 64, STEPS below. Measured on 2 CPU cores:
         training RNNsearch-50 65 min, RNNsearch-30 33, RNNencdec-50 46 (4,000 steps, see
         LONGER; the last 1,500 shared the cores), RNNencdec-30 12, decoding under a minute
         each, and minutes to generate and prepare the two corpora once: about 2 h 40 min.
         Then minGRU and minGRU + Luong on long30 (2,000 steps each; beside the LSTM with
         Luong attention a minGRU training step took 0.6-0.8 times as long on 2 cores).
  full   every model, 20,000 steps each (a GPU).
"""

import json
import sys

from attnjax import evaluators
from experiments import common

MODELS = {
    "encdec": "configs/rnn_encdec.py",
    "bahdanau": "configs/rnn_bahdanau.py",
    "seq2seq_reversed": "configs/rnn_seq2seq.py:reverse=1",
    "luong": "configs/rnn_luong.py:score=general",
    "transformer": "configs/transformer.py:size=small",
    "mingru": "configs/rnn_min.py:cell=gru,attention=none",
    "mingru_luong": "configs/rnn_min.py:cell=gru,attention=luong",
}
# What each model is, kept with its results (the report reads it there, not here).
LABELS = {"encdec": "RNNencdec", "bahdanau": "RNNsearch", "seq2seq_reversed": "seq2seq (reversed)",
          "luong": "Luong", "transformer": "Transformer", "mingru": "minGRU",
          "mingru_luong": "minGRU + Luong"}
NO_ATTENTION = ("encdec", "seq2seq_reversed", "mingru")
CORPORA = {"30": "en_fr_synth:long30", "50": "en_fr_synth:long50"}
FIGURE_2 = [("bahdanau", "50"), ("encdec", "50"), ("encdec", "30"), ("bahdanau", "30")]
LINEAR = [("mingru", "30"), ("mingru_luong", "30")]  # the bottleneck with a linear recurrence
RUNS = {"smoke": [("encdec", "30"), ("bahdanau", "50")], "cpu": FIGURE_2 + LINEAR,
        "full": [(model, corpus) for model in MODELS for corpus in CORPORA]}

# Training steps (batch 64). cpu: long30 has 40,000 pairs, 625 steps an epoch.
STEPS = {
    "smoke": dict.fromkeys(CORPORA, 3),  # on numbers:fr
    "cpu": {"30": 2000, "50": 2500},
    "full": dict.fromkeys(CORPORA, 20_000),
}
# RNNencdec-50 is still learning at 2,500 steps (validation perplexity 3.8 and falling, 67
# BLEU on 0-9-word sources): it trains longer. The rsqrt schedule does not depend on the
# number of steps, so a run resumed to more steps trains as a longer run from scratch would.
LONGER = {("cpu", "encdec", "50"): 4000}
# Test sources reach 75 words: room for them in subwords, and for their translations.
MAX_SRC_LEN, MAX_TGT_LEN, DECODE_MAX_LEN = 144, 160, 160
BUCKET_WIDTH = 5


OWN = "own"  # the corpus the command line names, in place of long30 and long50


def make_config(model: str, corpus: str, preset: str, data: dict | None = None):
  """The run's config; `data`: overrides of its data section (another corpus, `corpus` OWN)."""
  config = common.load_config(MODELS[model])
  steps = LONGER.get((preset, model, corpus), STEPS[preset]["50" if corpus == OWN else corpus])
  if preset == "smoke":
    config = common.make_tiny(config, "", steps)
  else:
    config.data.update(max_src_len=MAX_SRC_LEN, max_tgt_len=MAX_TGT_LEN)
    if corpus != OWN:
      config.data.name = CORPORA[corpus]
    config.decode.max_len = DECODE_MAX_LEN
    every = max(1, steps // 6)  # the same evaluations, however long the run
    config.train.update(num_steps=steps, eval_every=every, eval_samples=0,
                        checkpoint_every=min(500, steps))
  config.data.update(data or {})
  return config


def runs(preset: str, own: bool = False) -> list[tuple[str, str]]:
  """(model, corpus) of each run; on a corpus of the user's, each model once."""
  if own:
    return list(dict.fromkeys((model, OWN) for model, _ in RUNS[preset]))
  return RUNS[preset]


def run_names(preset: str, own: bool = False) -> list[str]:
  return [f"{model}-{corpus}" for model, corpus in runs(preset, own)]


def main(argv=None) -> int:
  args = common.parse(common.parser("bottleneck", __doc__), argv)
  root = common.runs_dir(args)
  own = "name" in args.data
  cells = {f"{model}-{corpus}": (model, corpus) for model, corpus in runs(args.preset, own)}
  test_data = make_config("bahdanau", OWN if own else "50", args.preset, args.data).data.to_dict()
  from experiments.bottleneck import report

  kept = report.results_dir(args.report_dir, args.preset)

  def do(name):
    workdir = root / name
    config = make_config(*cells[name], args.preset, args.data)
    common.train(config, workdir, progress=args.preset != "smoke")
    evaluators.evaluate(workdir, "bleu", width=BUCKET_WIDTH, batch_size=256 if args.preset == "smoke" else 64,
                        test_data=test_data)
    kept.mkdir(parents=True, exist_ok=True)
    (kept / "grid.json").write_text(json.dumps({"runs": list(cells)}, indent=2) + "\n")
    common.keep_results(workdir, kept, cell(*cells[name], config))

  return common.run_all("bottleneck", list(cells), do, args,
                        lambda: report.write(kept, args.preset, args.report_dir))


def cell(model: str, corpus: str, config) -> dict:
  """What the report needs to know of a run: the model, whether it attends, its family and
  training corpus (runs compared for 'attention rescues' share both), its longest source."""
  return {"model": model, "label": LABELS[model], "attends": model not in NO_ATTENTION,
          "family": config.model.family, "corpus": corpus,
          "max_train_words": int(corpus) if corpus.isdigit() else None}


if __name__ == "__main__":
  sys.exit(main())
