r"""Experiment 1: the bottleneck against attention, BLEU by sentence length (Bahdanau et al. 2015, Figure 2).

    python -m experiments.bottleneck.run --preset cpu      # then: python -m experiments.bottleneck.report

An RNN encoder-decoder without attention (`configs/rnn_seq2seq.py`), RNNsearch
(`configs/rnn_bahdanau.py`), Luong attention (`configs/rnn_luong.py:score=general`) and the
Transformer (`configs/transformer.py:size=small`), each trained on `en_fr_synth:long30` and
`:long50` (the -30 and -50 models: training sources of at most 30 or 50 words). All eight
are scored, greedy, on one test set: long50's, balanced over 5-word source-length bins up to
75 words (40 sentences a bin; a source in any preset's test split is in no preset's training
split, since the split is a hash of the source). Workdirs go to `<out>/<preset>/<model>-<30|50>`;
a finished run is skipped and an interrupted one resumes, so the command can be rerun.

Presets:
  smoke  two runs, seq2seq-30 and bahdanau-50, both tiny on numbers:fr for 3 steps: seconds
         (tests/test_experiments.py).
  cpu    the configs' model sizes, batch 64, a step budget per model aiming at about 8 minutes
         of training each on 2 CPU cores (STEPS below). Chosen from the Luong model's steady rate
         on en_fr_synth:quick (about 2.5 steps/s at batch 64 with both cores to itself), scaled by
         the corpora's mean lengths (long30 about 1.2 times quick's, long50 about 1.9 times) and by
         rough relative costs of the other models; not measured on long30/long50. Expected wall
         time, an estimate: about 65 minutes of training for the 8 models, 10-15 minutes to
         generate and prepare the two corpora once, 1-2 minutes of test decoding per model (600
         sentences in batches of 64 sorted by length): about 1 h 40 min, and up to twice that
         when other jobs share the cores.
  full   20,000 steps per model (a GPU).
"""

import sys

from experiments import common

MODELS = {
    "seq2seq": "configs/rnn_seq2seq.py",
    "bahdanau": "configs/rnn_bahdanau.py",
    "luong": "configs/rnn_luong.py:score=general",
    "transformer": "configs/transformer.py:size=small",
}
CORPORA = {"30": "en_fr_synth:long30", "50": "en_fr_synth:long50"}
ALL_RUNS = [(model, corpus) for corpus in CORPORA for model in MODELS]
RUNS = {"smoke": [("seq2seq", "30"), ("bahdanau", "50")], "cpu": ALL_RUNS, "full": ALL_RUNS}

# Training steps. cpu: about 8 minutes per model on 2 cores (an estimate, see above).
STEPS = {
    "smoke": {"30": dict.fromkeys(MODELS, 3), "50": dict.fromkeys(MODELS, 3)},  # on numbers:fr
    "cpu": {"30": {"seq2seq": 1500, "bahdanau": 1000, "luong": 1000, "transformer": 1500},
            "50": {"seq2seq": 1000, "bahdanau": 650, "luong": 650, "transformer": 1000}},
    "full": {"30": dict.fromkeys(MODELS, 20_000), "50": dict.fromkeys(MODELS, 20_000)},
}
# Test sources reach 75 words: room for them in subwords, and for their translations.
MAX_SRC_LEN, MAX_TGT_LEN, DECODE_MAX_LEN = 128, 160, 160
BUCKET_WIDTH = 5


def make_config(model: str, corpus: str, preset: str, data_dir: str = ""):
  config = common.load_config(MODELS[model])
  steps = STEPS[preset][corpus][model]
  if preset == "smoke":
    return common.make_tiny(config, data_dir, steps)
  config.data.update(name=CORPORA[corpus], max_src_len=MAX_SRC_LEN, max_tgt_len=MAX_TGT_LEN)
  if data_dir:
    config.data.data_dir = data_dir
  config.decode.max_len = DECODE_MAX_LEN
  config.train.update(num_steps=steps, eval_every=steps, eval_samples=100,
                      checkpoint_every=min(500, steps))
  return config


def main(argv=None) -> int:
  args = common.parser("bottleneck", __doc__).parse_args(argv)
  root = common.runs_dir(args)
  test_data = make_config("luong", "50", args.preset, args.data_dir).data
  runs = RUNS[args.preset]
  for i, (model, corpus) in enumerate(runs, 1):
    print(f"[{i}/{len(runs)}] {model}-{corpus}", flush=True)
    workdir = root / f"{model}-{corpus}"
    common.train(make_config(model, corpus, args.preset, args.data_dir), workdir,
                 progress=args.preset != "smoke")
    common.score_test(workdir, BUCKET_WIDTH, batch_size=256 if args.preset == "smoke" else 64,
                      test_data=test_data)
  from experiments.bottleneck import report
  report.write(root, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
