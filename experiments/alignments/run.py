r"""Experiment 2: how attention aligns (Bahdanau et al. 2015, Figure 3; Och & Ney 2003).

    python -m experiments.alignments.run --preset cpu                       # the models below
    python -m experiments.alignments.run --preset cpu --workdirs runs/demo  # any trained workdirs

Two parts, both from each workdir's model:
1. **Alignment error rate** of the teacher-forced cross-attention against en_fr_synth's gold
   word alignments (`attnjax.data.synth.aligned`) on the 1,000 test pairs of
   `en_fr_synth:quick`: links by argmax per target word and by half the mass, for the
   Transformer per layer and head as well (a heatmap), beside the monotone diagonal.
2. **Heatmaps** of a fixed list of sentences, one per phenomenon (post-nominal adjectives,
   ne ... pas with the passé composé, an object pronoun before the verb, the passive, two
   clauses), greedy, at word level: a source word's weight is the sum over its pieces.

Workdirs, unless given with --workdirs:
  smoke  a tiny RNNsearch and a tiny Transformer, trained here on numbers:fr for 3 steps;
         numbers has no gold alignments, so the monotone diagonal stands in as the gold to run
         the AER code (its figures mean nothing).
  cpu    RNNsearch-50 of experiment 1 (`bottleneck`, read where it trained it), and two models
         trained here on en_fr_synth:quick: Luong's general score with input feeding (1,000
         steps, seed 0: the config of experiment 3's run `general-feed1-seed0`) and a Transformer
         (`configs/transformer.py:size=small`, 2 layers of 4 heads, 1,500 steps). AER and
         heatmaps for all three. Expected wall time on 2 cores: about 7 and 10 minutes of
         training, a few seconds a model to measure. The AER of every Luong score over its
         seeds is experiment 3's (`scores`), measured from its own kept runs.
  full   the same with experiment 1's full preset and 3,000 steps each.
Each model's figures are kept as `<report_dir>/runs_<preset>/<workdir name>.json` (its AER
report, its greedy outputs and word-level attention on the drawn sentences, and the
provenance: command, commit, versions, machine), measured again only when its workdir has
trained further; the report (`report.py`) is built from them alone: `results_<preset>.md`,
`aer_<preset>.json` and the PNGs in `<preset>/`.

On another corpus (`--config.data.name=files --config.data.files_dir=DIR`, any data field):
experiment 1's RNNsearch made with the same flags (`bahdanau-own`), the Luong model and the
Transformer trained here on it, heatmaps of its first test pairs, and AER against `--gold FILE`
(a Pharaoh line per test pair) or the corpus's own gold; without either, AER is skipped and the
report says so. The runs this experiment trains (`--list`) are the Luong model and the
Transformer.
"""

import json
import pathlib
import sys

from experiments import common, shared

# Luong's general score with input feeding, seed 0: experiment 3's config, trained here for its
# heatmaps, since experiment 3 keeps its runs' figures and not their checkpoints.
LUONG, LUONG_CELL = "luong-general-feed1", ("general", "", 1, 0)
DRAWN_TEST_PAIRS = 4  # on another corpus, the heatmaps are of its first test pairs


def reordering_sentences() -> list[tuple[str, str, str]]:
  """(phenomenon, English, French reference), realised from plans of the en_fr_synth grammar."""
  from attnjax.data import lexicon as lex, synth
  noun = {n.en: n for n in lex.NOUNS}
  adj = {a.en: a for a in lex.ADJECTIVES}
  verb = {v.en: v for v in lex.VERBS}
  prep = {p.en: p for p in lex.PREPOSITIONS}
  NP, Clause = synth.NounPhrase, synth.Clause
  plans = [
      ("post-nominal adjective, ne ... pas, passé composé",
       [Clause(verb["see"], NP(noun["man"], adjectives=(adj["old"],)),
               NP(noun["car"], adjectives=(adj["red"],),
                  modifier=synth.PrepPhrase(prep["of"], NP(noun["daughter"], det="his")))
               , "past", negative=True)]),
      ("object pronoun before the verb, participle agreement",
       [Clause(verb["eat"], NP(noun["cat"]), NP(noun["apple"], pronoun=True), "past")]),
      ("plural object pronoun with a negation",
       [Clause(verb["find"], NP(noun["girl"]), NP(noun["key"], plural=True, pronoun=True), "past",
               negative=True)]),
      ("passive with an agent",
       [Clause(verb["sign"], NP(noun["minister"]), NP(noun["treaty"]), "past", passive=True)]),
      ("two adjectives on both sides of the noun",
       [Clause(verb["buy"], NP(noun["woman"], adjectives=(adj["young"],)),
               NP(noun["house"], det="a", adjectives=(adj["big"], adj["white"])), "past")]),
      ("two clauses, future and present",
       [Clause(verb["read"], NP(noun["boy"]), NP(noun["letter"], adjectives=(adj["long"],)), "future"),
        Clause(verb["write"], NP(noun["sister"], det="his"), NP(noun["book"], det="a",
                                                                 adjectives=(adj["new"],)), "present")]),
  ]
  out = []
  for phenomenon, clauses in plans:
    sentence = synth.Sentence(tuple(clauses), (lex.CONJUNCTIONS[0],) * (len(clauses) - 1))
    out.append((phenomenon, synth.english(sentence), synth.french(sentence)))
  return out


def number_sentences() -> list[tuple[str, str, str]]:
  from attnjax.data import numbers
  cases = [("one word to several", 97), ("et between tens and units", 71),
           ("hundreds, tens and units", 385), ("thousands", 1999)]
  return [(what, numbers.words(n, "en"), numbers.words(n, "fr")) for what, n in cases]


def sentences_for(data) -> list[tuple[str, str, str]]:
  """(what, source, reference) to draw for a model trained on the corpus of `data`."""
  if data.name.startswith("numbers"):
    return number_sentences()
  if data.name.startswith("en_fr_synth"):
    return reordering_sentences()
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  pairs = pipeline.load_pairs(data, "test", prepare(data, progress=False))[:DRAWN_TEST_PAIRS]
  return [(f"test pair {i + 1}", src, ref) for i, (src, ref) in enumerate(pairs)]


def measure(workdir: pathlib.Path, data_dir: str = "", gold_file=None) -> dict:
  """A model's figures for the report: its AER report (None without attention or gold, and
  then why), its greedy outputs and word-level attention [target words, layers, heads, source
  words] on the sentences of `sentences_for`."""
  import numpy as np
  from attnjax.analysis import alignment
  from attnjax.analysis.gold import alignment_errors, gold_for
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir)
  pairs, links = gold_for(trained, data_dir, gold_file)
  result = {"name": workdir.name, "corpus": common.corpus_of(workdir), "trained_on": trained.config.data.name,
            "step": trained.step, "aer": None, "skipped": None, "drawn": None}
  if pairs is None:
    result["skipped"] = links
    print(f"  {workdir}: {links}", flush=True)
  else:
    result["aer"] = alignment_errors(trained, pairs, links)
    if result["aer"] is not None:
      r = result["aer"]
      print(f"  {workdir}: AER {r['aer']['argmax']:.3f} (argmax), {r['aer']['mass']:.3f} (mass), "
            f"diagonal {r['diagonal']:.3f}", flush=True)
  cases = sentences_for(trained.config.data)
  translations = trained.translator(1, batch_size=len(cases))([english for _, english, _ in cases])
  result["drawn"] = [
      {"what": what, "source": src, "reference": ref, "output": t.text,
       "src_words": alignment.words_of(t.src_pieces), "tgt_words": alignment.words_of(t.tgt_pieces),
       "weights": None if t.alignment is None else
       np.round(alignment.to_words(t.alignment, t.src_pieces, t.tgt_pieces), 4).tolist()}
      for (what, src, ref), t in zip(cases, translations)]
  return result


def keep(workdir: pathlib.Path, store: pathlib.Path, data_dir: str = "", gold_file=None) -> dict:
  """`measure`, kept in `store/<workdir name>.json` with its provenance; read back while the
  workdir's step and the arguments are those it was made with."""
  from attnjax import evaluators
  return evaluators.kept(store / f"{workdir.name}.json", evaluators.step_of(workdir),
                         {"gold": gold_file and str(gold_file)},
                         lambda: {**measure(workdir, data_dir, gold_file), "provenance": common.provenance()},
                         indent=1)


def own_runs(args) -> dict:
  """{name: config} of the models this experiment trains itself (`--list`)."""
  if args.preset == "smoke":
    return {name: shared.smoke_config(name, args) for name in shared.SMOKE_MODELS}
  return {LUONG: shared.luong_config(*LUONG_CELL, args.preset, args.data),
          "transformer": shared.transformer_config(args)}


def other_workdirs(args) -> list[pathlib.Path]:
  """Experiment 1's RNNsearch, which this one reads where it trained it (none for smoke)."""
  if args.preset == "smoke":
    return []
  rnnsearch = "bahdanau-own" if "name" in args.data else "bahdanau-50"
  workdir = pathlib.Path(args.out).parent / "bottleneck" / args.preset / rnnsearch
  if not (workdir / "train_done.json").exists():
    raise SystemExit(f"not trained yet: {workdir}; run `python -m experiments.bottleneck.run --preset "
                     f"{args.preset} --only {rnnsearch}` (with the same data flags) first, or give --workdirs")
  return [workdir]


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, help="trained workdirs (default: see above)")
  p.add_argument("--gold", help="gold alignments of the corpus's test split, a Pharaoh line per pair")
  args = common.parse(p, argv)
  own = {} if args.workdirs else own_runs(args)
  chosen = common.select(list(own), args)
  if args.list:
    print("\n".join(chosen))
    return 0
  if args.only or args.shard:  # cluster jobs train; the report comes after them all
    for name in chosen:
      common.train(own[name], common.runs_dir(args) / name, progress=args.preset != "smoke")
    return 0
  workdirs = args.workdirs or other_workdirs(args)
  for name, config in own.items():
    common.train(config, common.runs_dir(args) / name, progress=args.preset != "smoke")
    workdirs.append(common.runs_dir(args) / name)
  from experiments.alignments import report
  store = report.results_dir(args.report_dir, args.preset)
  for workdir in workdirs:
    keep(workdir, store, args.data_dir, args.gold)
  (store / "grid.json").write_text(json.dumps({"runs": [w.name for w in workdirs]}, indent=2) + "\n")
  report.write(store, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
