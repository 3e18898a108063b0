r"""Experiment 2's report: each workdir's alignment error rate and heatmaps.

    python -m experiments.alignments.report --preset cpu --workdirs W [W ...]

Writes `results_<preset>.md` (the AER table, then the sources, references, each model's output
and the heatmaps), `aer_<preset>.json` (each model's `Trained.alignment_error` report) and
`<preset>/<workdir name>_<k>.png`, `<preset>/<workdir name>_aer.png` into the report folder.
"""

import json
import pathlib
import sys

from attnjax.analysis.gold import alignment_errors, gold_for
from experiments import common


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


DRAWN_TEST_PAIRS = 4  # on another corpus, the heatmaps are of its first test pairs


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


def write(workdirs, preset: str, report_dir, data_dir: str = "", drawn=None,
          gold_file=None) -> list[pathlib.Path]:
  """AER of every workdir (against `gold_file` where given, see `gold_for`); heatmaps of
  those named in `drawn` (default: all)."""
  from attnjax.analysis import alignment, viz
  from attnjax.infer import trained as trained_lib
  report_dir = pathlib.Path(report_dir)
  image_dir = report_dir / preset
  image_dir.mkdir(parents=True, exist_ok=True)
  models, written, errors, skipped = [], [], {}, {}
  for workdir in map(pathlib.Path, workdirs):
    trained = trained_lib.load(workdir)
    name = workdir.name
    pairs, links = gold_for(trained, data_dir, gold_file)
    if pairs is None:
      skipped[name] = links
      print(f"  {workdir}: {links}", flush=True)
    report = alignment_errors(trained, pairs, links) if pairs is not None else None
    if report is not None:
      errors[name] = report
      if report["layers"] * report["heads"] > 1:
        written.append(_plot_per_head(report, name, image_dir / f"{name}_aer.png"))
      print(f"  {workdir}: AER {report['aer']['argmax']:.3f} (argmax), "
            f"{report['aer']['mass']:.3f} (mass), diagonal {report['diagonal']:.3f}", flush=True)
    if drawn is not None and name not in drawn:
      continue
    cases = sentences_for(trained.config.data)
    translations = trained.translator(1, batch_size=len(cases))([english for _, english, _ in cases])
    images = []
    for k, t in enumerate(translations):
      if t.alignment is None:
        images.append(None)
        continue
      path = image_dir / f"{name}_{k}.png"
      viz.plot_alignment(alignment.to_words(t.alignment, t.src_pieces, t.tgt_pieces),
                         alignment.words_of(t.src_pieces), alignment.words_of(t.tgt_pieces),
                         path, per_head=True)
      images.append(path)
      written.append(path)
    models.append((name, trained.config.data.name, trained.step, cases, translations, images))

  corpora = sorted({common.corpus_of(w) for w in map(pathlib.Path, workdirs)})
  text = [f"# Alignments ({preset} preset)\n\nModels trained on {', '.join(corpora)}.\n\n",
          _aer_section(errors, image_dir, report_dir),
          "".join(f"\n{name}: {why}.\n" for name, why in skipped.items()),
          "\n## Heatmaps\n\n"
          "Source words along x, target words along y, greedy decoding (Bahdanau et al. 2015, "
          "Figure 3); a word's weight is the sum over its source pieces and the mean over its "
          "target pieces. For the Transformer: the cross-attention's mean over layers and heads "
          "first, then each layer and head.\n\n",
          common.table(["model", "trained on", "step"], [[m[0], m[1], m[2]] for m in models])]
  for name, _, _, cases, translations, images in models:
    text.append(f"\n### {name}\n\n")
    text.append(common.table(["phenomenon", "source", "reference", "output"],
                             [[what, src, ref, t.text] for (what, src, ref), t in zip(cases, translations)]))
    for (what, src, _), image in zip(cases, images):
      text.append(f"\n**{what}**: {src}\n\n" +
                  (f"![{name}: {src}]({image.relative_to(report_dir)})\n" if image else
                   "(no attention: this model has no alignment to draw)\n"))
  md = report_dir / f"results_{preset}.md"
  md.write_text("".join(t if t.endswith("\n") else t + "\n" for t in text))
  aer_json = report_dir / f"aer_{preset}.json"
  aer_json.write_text(json.dumps(errors, indent=2) + "\n")
  print(f"wrote {md}, {aer_json} and {len(written)} images in {image_dir}")
  return [md, aer_json, *written]


def _aer_section(errors: dict, image_dir: pathlib.Path, report_dir: pathlib.Path) -> str:
  if not errors:
    return "No model with attention: no alignment error rate.\n"
  first = next(iter(errors.values()))
  lines = ["## Alignment error rate\n\n",
           f"Teacher-forced cross-attention on {first['sentences']} test pairs against the gold "
           "word alignments (Och & Ney 2003: lower is better, 0 is perfect), links by argmax per "
           f"target word and by the fewest source words holding {first['mass']:.1f} of its weight; "
           "for several layers or heads, of their mean map. The monotone diagonal is the "
           "baseline: target word j linked to the source word at the same relative place.\n\n",
           common.table(["model", "layers × heads", "AER, argmax", f"AER, mass {first['mass']:.1f}",
                         "diagonal", "best head (argmax)"],
                        [[name, f"{r['layers']} × {r['heads']}", f"{r['aer']['argmax']:.3f}",
                          f"{r['aer']['mass']:.3f}", f"{r['diagonal']:.3f}", _best_head(r)]
                         for name, r in errors.items()])]
  for name, r in errors.items():
    image = image_dir / f"{name}_aer.png"
    if image.exists():
      lines.append(f"\n{name}, AER (argmax) per layer and head:\n\n"
                   f"![{name} AER per head]({image.relative_to(report_dir)})\n")
  return "".join(lines)


def _best_head(report: dict) -> str:
  if report["layers"] * report["heads"] == 1:
    return ""
  cells = [(value, l, h) for l, row in enumerate(report["per_head"]["argmax"])
           for h, value in enumerate(row)]
  value, l, h = min(cells)
  return f"layer {l + 1} head {h + 1}: {value:.3f}"


def _plot_per_head(report: dict, name: str, path: pathlib.Path) -> pathlib.Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  grid = np.array(report["per_head"]["argmax"])
  fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 2, 0.9 * grid.shape[0] + 1.5))
  image = ax.imshow(grid, cmap="viridis_r", vmin=0, vmax=1)
  for (l, h), value in np.ndenumerate(grid):
    ax.text(h, l, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black")
  ax.set_xticks(range(grid.shape[1]), [f"head {h + 1}" for h in range(grid.shape[1])])
  ax.set_yticks(range(grid.shape[0]), [f"layer {l + 1}" for l in range(grid.shape[0])])
  ax.set_title(f"{name}: AER (argmax) per cross-attention head\nmean map {report['aer']['argmax']:.3f}, "
               f"diagonal {report['diagonal']:.3f}", fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.05)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__, runs=False)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, required=True)
  p.add_argument("--gold", help="gold alignments of the test split, a Pharaoh line per pair")
  args = p.parse_args(argv)
  write(args.workdirs, args.preset, args.report_dir, args.data_dir, gold_file=args.gold)
  return 0


if __name__ == "__main__":
  sys.exit(main())
