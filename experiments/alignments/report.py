r"""Experiment 2's report: translate the fixed sentences with each workdir and draw the heatmaps.

    python -m experiments.alignments.report --preset cpu --workdirs W [W ...]

Writes `results_<preset>.md` (sources, references, each model's output, the heatmaps) and
`<preset>/<workdir name>_<k>.png` into the report folder.
"""

import pathlib
import sys

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


def sentences_for(data_name: str) -> list[tuple[str, str, str]]:
  if data_name.startswith("numbers"):
    return number_sentences()
  if data_name.startswith("en_fr_synth"):
    return reordering_sentences()
  raise SystemExit(f"no sentence list for a model trained on {data_name!r}; use en_fr_synth or numbers workdirs")


def write(workdirs, preset: str, report_dir) -> list[pathlib.Path]:
  from attnjax import trained as trained_lib, viz
  report_dir = pathlib.Path(report_dir)
  image_dir = report_dir / preset
  image_dir.mkdir(parents=True, exist_ok=True)
  models, written = [], []
  for workdir in map(pathlib.Path, workdirs):
    trained = trained_lib.load(workdir)
    cases = sentences_for(trained.config.data.name)
    translations = trained.translator(1, batch_size=len(cases))([english for _, english, _ in cases])
    images = []
    for k, t in enumerate(translations):
      if t.alignment is None:
        images.append(None)
        continue
      path = image_dir / f"{workdir.name}_{k}.png"
      viz.plot_alignment(t.alignment, t.src_pieces, t.tgt_pieces, path, per_head=True)
      images.append(path)
      written.append(path)
    models.append((workdir.name, trained.config.data.name, trained.step, cases, translations, images))
    print(f"  {workdir}: {sum(i is not None for i in images)} heatmaps", flush=True)

  text = [f"# Alignments ({preset} preset)\n\n",
          "Source subword pieces along x, target pieces along y, greedy decoding (Bahdanau et al. "
          "2015, Figure 3). For the Transformer: the cross-attention's mean over layers and heads "
          "first, then each layer and head.\n\n",
          common.table(["model", "trained on", "step"], [[m[0], m[1], m[2]] for m in models])]
  for name, _, _, cases, translations, images in models:
    text.append(f"\n## {name}\n\n")
    text.append(common.table(["phenomenon", "source", "reference", "output"],
                             [[what, src, ref, t.text] for (what, src, ref), t in zip(cases, translations)]))
    for (what, src, _), image in zip(cases, images):
      text.append(f"\n**{what}**: {src}\n\n" +
                  (f"![{name}: {src}]({image.relative_to(report_dir)})\n" if image else
                   "(no attention: this model has no alignment to draw)\n"))
  md = report_dir / f"results_{preset}.md"
  md.write_text("".join(t if t.endswith("\n") else t + "\n" for t in text))
  print(f"wrote {md} and {len(written)} heatmaps in {image_dir}")
  return [md, *written]


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, required=True)
  args = p.parse_args(argv)
  write(args.workdirs, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
