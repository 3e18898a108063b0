"""The notebook API: `attnjax.load(workdir)` translates, aligns and evaluates as the CLI does."""

import json

import pytest

import numpy as np
import sacrebleu

import attnjax
from attnjax import cli
from attnjax.data import pipeline


def test_load_translates_aligns_and_evaluates_like_the_cli(trained, capsys):
  from attnjax import cli
  model = attnjax.load(trained)
  pairs = pipeline.load_pairs(model.config.data, "test")[:12]
  sources = [s for s, _ in pairs]

  texts = model.translate(sources)
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), *sources]) == 0
  assert capsys.readouterr().out.splitlines() == texts
  assert model.translate(sources[0]) == texts[:1]  # one string is one sentence

  for t, text in zip(model.alignments(sources), texts):
    assert t.text == text
    assert t.alignment.shape == (len(t.tgt_pieces), 1, 1, len(t.src_pieces))
    np.testing.assert_allclose(t.alignment.sum(-1), 1.0, rtol=1e-5)

  report = model.evaluate(pairs)
  assert report["hypotheses"] == texts and report["sentences"] == len(pairs)
  expected = sacrebleu.corpus_bleu(texts, [[r for _, r in pairs]]).score
  assert report["bleu"] == expected
  assert sum(row["sentences"] for row in report["by_length"]) == len(pairs)


@pytest.mark.slow
def test_translate_samples_from_the_cli_and_top_1_is_greedy(trained, capsys):
  from attnjax import cli
  sources = ["7", "21", "300"]
  run = lambda *flags: (cli.main(["attnjax", "translate", "--workdir", str(trained), *flags, *sources]),
                        capsys.readouterr().out.splitlines())
  assert run() == run("--sampling", "topk:1")
  code, drawn = run("--sampling", "nucleus:0.9", "--temperature", "3", "--seed", "5")
  assert code == 0 and len(drawn) == 3
  assert run("--sampling", "nucleus:0.9", "--temperature", "3", "--seed", "5") == (0, drawn)


@pytest.mark.slow
def test_translate_nbest_prints_the_beam_best_first_as_tsv(trained, capsys):
  from attnjax import cli
  sources = ["7", "21"]
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--beam", "4", *sources]) == 0
  best = capsys.readouterr().out.splitlines()
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--beam", "4", "--nbest", "3",
                   *sources]) == 0
  rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
  assert [(r[0], r[1]) for r in rows] == [(str(i), str(k)) for i in range(2) for k in (1, 2, 3)]
  assert [r[4] for r in rows if r[1] == "1"] == best
  for i in range(2):
    scores = [float(r[2]) for r in rows if r[0] == str(i)]
    assert scores == sorted(scores, reverse=True)
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--beam", "2", "--nbest", "3",
                   "7"]) == 2
  assert "--nbest=3 lists the best of a beam" in capsys.readouterr().err


def _write_pairs(trained, tmp_path, count=20, gz=False):
  import gzip
  model = attnjax.load(trained)
  pairs = pipeline.load_pairs(model.config.data, "test")[:count]
  opener = (lambda p: gzip.open(p, "wt", encoding="utf-8")) if gz else (lambda p: open(p, "w", encoding="utf-8"))
  src, ref = tmp_path / ("src.txt.gz" if gz else "src.txt"), tmp_path / "ref.txt"
  with opener(src) as f:
    f.writelines(s + "\n" for s, _ in pairs)
  with open(ref, "w", encoding="utf-8") as f:
    f.writelines(r + "\n" for _, r in pairs)
  return model, pairs, src, ref


def test_eval_scores_any_files_as_it_scores_a_split(trained, tmp_path, capsys):
  import json
  from attnjax import cli
  model, pairs, src, ref = _write_pairs(trained, tmp_path, gz=True)
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--src", str(src), "--ref", str(ref)]) == 0
  out = capsys.readouterr().out
  assert "nrefs:1|case:mixed" in out and "source length" in out
  report = json.loads((trained / "eval_src.txt.gz.json").read_text())
  assert report["bleu"] == model.evaluate(pairs)["bleu"] and report["sentences"] == len(pairs)


def test_translate_a_file_keeps_the_input_order(trained, tmp_path, capsys):
  from attnjax import cli
  model, pairs, src, _ = _write_pairs(trained, tmp_path)
  out = tmp_path / "out.txt"
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--input", str(src),
                   "--output", str(out)]) == 0
  assert f"wrote {len(pairs)} translations" in capsys.readouterr().out
  assert out.read_text().splitlines() == model.translate([s for s, _ in pairs])
  assert not (tmp_path / "out.txt.incomplete").exists()


@pytest.mark.slow
def test_compare_prints_both_systems_with_intervals_and_p_values(trained, tmp_path, capsys):
  from attnjax import cli
  _, pairs, src, ref = _write_pairs(trained, tmp_path)
  assert cli.main(["attnjax", "average", "--workdir", str(trained), "--last", "2",
                   "--out", str(tmp_path / "avg")]) == 0
  capsys.readouterr()
  assert cli.main(["attnjax", "compare", "--workdir", str(trained), "--workdir", str(tmp_path / "avg"),
                   "--src", str(src), "--ref", str(ref)]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert f"{len(pairs)} sentences of src.txt" in lines[0] and "bs:1000" in lines[0] and "ar:10000" in lines[0]
  assert lines[1].startswith(f"{trained}: BLEU") and "±" in lines[1] and "p =" not in lines[1]
  assert lines[2].startswith(f"{tmp_path / 'avg'}: BLEU") and "paired bootstrap p = " in lines[2]
  assert "approximate randomization p = " in lines[2]


def test_translate_exports_words_pieces_and_attention(trained, tmp_path, capsys):
  from attnjax.analysis import alignment
  out = tmp_path / "att.jsonl"
  assert cli.main(["attnjax", "translate", "--workdir", str(trained), "--alignments", str(out),
                   "three hundred", "seven"]) == 0
  printed = capsys.readouterr().out.splitlines()
  records = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r["translation"] for r in records] == printed
  (t,) = attnjax.load(trained).alignments(["three hundred"])
  first = records[0]
  assert first["source"] == "three hundred" and first["src_words"] == ["three", "hundred"]
  assert first["src_pieces"] == t.src_pieces and first["tgt_pieces"] == t.tgt_pieces
  attention = np.array(first["attention"])
  assert attention.shape == (len(t.tgt_pieces), 1, 1, len(t.src_pieces))
  np.testing.assert_allclose(attention, t.alignment, atol=1e-5)
  words = np.array(first["word_attention"]).reshape(-1, 1, 1, 2)  # [] when the output is empty
  assert words.shape == (len(first["tgt_words"]), 1, 1, 2)
  np.testing.assert_allclose(words, alignment.to_words(t.alignment, t.src_pieces, t.tgt_pieces), atol=1e-5)


def test_eval_alignment_scores_attention_against_a_gold_file(trained, tmp_path, capsys):
  (tmp_path / "a.src").write_text("three hundred\nseven\n")
  (tmp_path / "a.ref").write_text("trois cents\nsept\n")
  (tmp_path / "a.gold").write_text("0-0 1-1\n0-0\n")
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--alignment", "--src",
                   str(tmp_path / "a.src"), "--ref", str(tmp_path / "a.ref"), "--gold",
                   str(tmp_path / "a.gold")]) == 0
  printed = capsys.readouterr().out
  assert "alignment error rate on 2 sentences" in printed and "monotone diagonal" in printed
  report = json.loads((trained / "alignment_a.src.json").read_text())
  expected = attnjax.load(trained).alignment_error(
      [("three hundred", "trois cents"), ("seven", "sept")], ["0-0 1-1", "0-0"])
  assert report["aer"] == expected["aer"] and report["diagonal"] == 0.0


def test_align_draws_words_by_default_and_pieces_on_request(trained, tmp_path, capsys, monkeypatch):
  from attnjax.analysis import viz
  drawn = []
  monkeypatch.setattr(viz, "plot_alignment", lambda w, src, tgt, path, per_head: drawn.append((w, src, tgt)) or path)
  for extra in ([], ["--pieces"]):
    assert cli.main(["attnjax", "align", "--workdir", str(trained), "--src", "three hundred",
                     "--out", str(tmp_path / "a.png"), *extra]) == 0
  (words, src_words, _), (pieces, src_pieces, tgt_pieces) = drawn
  assert src_words == ["three", "hundred"] and src_pieces[-1] == "</s>"
  assert words.shape[-1] == 2 and pieces.shape == (len(tgt_pieces), 1, 1, len(src_pieces))


def test_reading_a_workdir_is_silent(trained, caplog):
  """A notebook's attnjax.load logs nothing: Orbax's notes on a read-only manager stay out."""
  import logging
  import attnjax
  with caplog.at_level(logging.INFO):
    assert attnjax.load(trained).step > 0
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
