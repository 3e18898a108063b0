"""Each experiment's smoke preset end to end (run, then report): the reports hold what they promise."""

import json
import re

import pytest

from experiments.alignments import run as alignments
from experiments.bottleneck import run as bottleneck
from experiments.parallelism import run as parallelism
from experiments.scores import run as scores
from experiments.scores import sharpness


def _args(tmp, data_dir):
  return ["--preset", "smoke", "--out", str(tmp / "runs"), "--data_dir", str(data_dir),
          "--report_dir", str(tmp / "report")]


def _table(markdown: str, first_header: str) -> list[list[str]]:
  """The body rows of the markdown table whose first column is `first_header`."""
  lines = markdown.splitlines()
  start = next(i for i, l in enumerate(lines) if l.startswith(f"| {first_header} |"))
  rows = []
  for line in lines[start + 2:]:
    if not line.startswith("|"):
      break
    rows.append([cell.strip() for cell in line.strip("|").split("|")])
  return rows


def _is_png(path):
  return path.exists() and path.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def bottleneck_run(tmp_path_factory, data_dir):
  tmp = tmp_path_factory.mktemp("bottleneck")
  assert bottleneck.main(_args(tmp, data_dir)) == 0
  return tmp


def test_bottleneck_reports_bleu_for_every_length_bin_and_model(bottleneck_run, data_dir):
  from attnjax.data.pipeline import load_pairs
  config = bottleneck.make_config("encdec", "30", "smoke", str(data_dir))
  sources = [s for s, _ in load_pairs(config.data, "test")]
  bins = sorted({len(s.split()) // bottleneck.BUCKET_WIDTH for s in sources})
  report = bottleneck_run / "report"
  md = (report / "results_smoke.md").read_text()
  names = [f"{m}-{c}" for m, c in bottleneck.RUNS["smoke"]]
  rows = _table(md, "source words")
  assert [row[0] for row in rows] == [f"{b * 5}-{b * 5 + 4}" for b in bins]
  for row in rows:
    assert len(row) == 2 + len(names) and all(re.fullmatch(r"\d+\.\d\d", x) for x in row[2:]), row
  assert sum(int(row[1]) for row in rows) == len(sources)
  assert [row[0] for row in _table(md, "model")] == names
  assert _is_png(report / "bleu_by_length_smoke.png")


def test_alignments_draw_a_heatmap_per_sentence_for_attentive_models(bottleneck_run, data_dir, tmp_path):
  runs = bottleneck_run / "runs" / "smoke"
  args = _args(tmp_path, data_dir) + ["--workdirs", str(runs / "bahdanau-50"), str(runs / "encdec-30")]
  assert alignments.main(args) == 0
  from experiments.alignments.report import number_sentences
  sentences = number_sentences()
  md = (tmp_path / "report" / "results_smoke.md").read_text()
  for k, (_, source, reference) in enumerate(sentences):
    assert _is_png(tmp_path / "report" / "smoke" / f"bahdanau-50_{k}.png")
    assert not (tmp_path / "report" / "smoke" / f"encdec-30_{k}.png").exists()  # no attention
  rows = _table(md, "phenomenon")  # the first model's table
  assert [(r[1], r[2]) for r in rows] == [(s, r) for _, s, r in sentences]
  assert md.count("no attention") == len(sentences)
  aer = json.loads((tmp_path / "report" / "aer_smoke.json").read_text())
  assert list(aer) == ["bahdanau-50"]  # the model without attention has no AER
  assert aer["bahdanau-50"]["diagonal"] == 0.0  # numbers: the diagonal stands in as gold
  (row,) = _table(md, "model")[:1]
  assert row[0] == "bahdanau-50" and row[2] == f"{aer['bahdanau-50']['aer']['argmax']:.3f}"


def test_scores_report_mean_and_std_over_seeds_and_significance(tmp_path, data_dir):
  assert scores.main(_args(tmp_path, data_dir)) == 0
  md = (tmp_path / "report" / "results_smoke.md").read_text()
  rows = {(r[0], r[1]): r for r in _table(md, "score")}
  assert set(rows) == {(s, "yes" if f else "no") for s, f, _ in scores.GRID["smoke"]}
  number = r"\d+\.\d\d"
  assert rows[("dot", "yes")][2] == "2" and "±" in rows[("dot", "yes")][7]
  assert rows[("general", "no")][2] == "1" and re.fullmatch(number, rows[("general", "no")][7])
  assert re.fullmatch(number, rows[("general", "no")][6])  # test perplexity
  assert len(_table(md.split("## Every run")[1], "score")) == len(scores.GRID["smoke"])
  # two variants: the better one against the other, over the one seed both have
  (sig,) = _table(md.split("## Significance")[1], "best")
  assert {sig[0], sig[2]} == {"dot, feeding", "general, no feeding"} and sig[4] == "1"
  assert 0.0 <= float(sig[5]) <= 1.0 and sig[6] in ("yes", "no")
  assert "bs:1000" in md
  for name in ("scores_smoke.png", "curves_smoke.png"):
    assert _is_png(tmp_path / "report" / name)
  # sharpness: the largest attention weight per target piece lies in (0, 1]
  assert sharpness.main(_args(tmp_path, data_dir)) == 0
  peaks = _table((tmp_path / "report" / "sharpness_smoke.md").read_text(), "score")
  assert {(r[0], r[1]) for r in peaks} == set(rows)
  assert all(0.0 < float(r[3].split(" ")[0]) <= 1.0 for r in peaks)


def test_parallelism_finds_one_loop_of_n_steps_per_rnn_layer_and_none_in_the_transformer(tmp_path, data_dir):
  assert parallelism.main(_args(tmp_path, data_dir)) == 0
  runs = tmp_path / "runs" / "smoke"
  loops = json.loads((runs / "loops.json").read_text())
  for length in parallelism.SETTINGS["smoke"]["loop_lengths"]:
    for rnn in ("rnn_seq2seq", "rnn_attention"):
      found = loops[f"{rnn}/{length}"]
      # encoder forward and backward, decoder: each a loop of n steps
      assert [l["trip_count"] for l in found["loops"]] == [length] * 3, found
      assert found["sequential_steps_per_layer"] == length
    assert loops[f"transformer/{length}"]["loops"] == []
  steps = json.loads((runs / "steps.json").read_text())
  assert {(r["model"], r["length"]) for r in steps.values()} == {
      (m, n) for m in (*parallelism.MODELS, parallelism.CUDNN)
      for n in parallelism.SETTINGS["smoke"]["lengths"]}
  sizes = json.loads((runs / "models.json").read_text())["models"]
  assert sizes[parallelism.CUDNN]["model"]["encoder_impl"] == "cudnn"
  # the same model, but for cuDNN's second bias: 4 x hidden per direction and layer
  model = sizes["rnn_attention"]["model"]
  extra = 4 * (model["hidden_dim"] // 2) * 2 * model["num_layers"]
  assert sizes[parallelism.CUDNN]["params"] == sizes["rnn_attention"]["params"] + extra
  devices = json.loads((runs / "devices.json").read_text())
  assert sorted(devices, key=int) == ["1", "2"]
  assert all({r["strategy"] for r in d["rows"]} == {"pmap", "mesh"} for d in devices.values())
  report = tmp_path / "report"
  md = (report / "results_smoke.md").read_text()
  assert len(_table(md, "devices")) == 2 * len(parallelism.SETTINGS["smoke"]["device_models"]) * 2
  for name in ("step_time_smoke.png", "devices_smoke.png"):
    assert _is_png(report / name)


def test_bottleneck_claims_are_computed_from_the_hypotheses():
  from experiments.bottleneck import report
  short = " ".join(["word"] * 5)
  long = " ".join(["word"] * 55)
  ref = "le vieil homme a vu la voiture rouge de sa fille ."
  encdec = [(short, ref, ref)] * 4 + [(long, ref, "rien")] * 4  # 100 short, 0 long
  bahdanau = [(short, ref, ref)] * 4 + [(long, ref, ref)] * 4
  runs = {"encdec-50": {"triples": encdec, "test": {"by_length": []}},
          "bahdanau-50": {"triples": bahdanau,
                          "test": {"by_length": [{"min_len": 5, "max_len": 9, "bleu": 100.0},
                                                 {"min_len": 45, "max_len": 49, "bleu": 85.0},
                                                 {"min_len": 50, "max_len": 54, "bleu": 20.0}]}}}
  assert report.bleu_between(encdec, 0, 9) == pytest.approx(100.0)
  assert report.bleu_between(encdec, 50, 99) == 0.0
  assert report.bleu_between(encdec, 10, 20) is None
  rows = {(r[0], r[1].split(" (")[0]): (r[2], r[4]) for r in report.claims(runs)}
  assert rows[("encdec-50", "BLEU on 0-9-word sources")] == ("100.00", "yes")
  assert rows[("encdec-50", "drop from 0-9 to 50+ words")] == ("100.00", "yes")
  # the 50-54 bin is past the 50-word limit of the claim; 45-49 is the worst inside it
  assert rows[("bahdanau-50", "largest decline below 50 words")] == ("15.00", "no")
