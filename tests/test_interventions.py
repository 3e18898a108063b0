"""Interventions from a workdir: `Trained.evaluate/perplexity/attention(intervention=, heads=)`,
`Trained.head_importance`, `attnjax eval --intervene`, and Shift-Att (`eval --alignment --shift`)."""

import json

import numpy as np
import pytest

import attnjax
from attnjax import cli
from attnjax.analysis import alignment
from attnjax.config import ConfigError
from attnjax.data import pipeline
from attnjax.models import Intervention
from attnjax.train.loop import train_and_evaluate
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out


def _monotone_gold(pairs):
  """A gold line per pair: target word j to source word min(j, last)."""
  return [" ".join(f"{min(j, len(s.split()) - 1)}-{j}" for j in range(len(r.split()))) for s, r in pairs]


@pytest.fixture(scope="module")
def transformer(data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("transformer") / "run"
  train_and_evaluate(tiny_config(data_dir, family="transformer", steps=6), workdir, progress=False)
  return workdir


def test_eval_intervene_scores_perplexity_and_bleu_beside_the_models_own(trained, capsys):
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--intervene", "permute",
                   "--intervention_seed", "3", "--limit", "16"]) == 0
  printed = capsys.readouterr().out
  assert "teacher-forced perplexity under permute-seed3" in printed and "BLEU" in printed
  report = json.loads((trained / "eval_test.permute-seed3.json").read_text())
  model = attnjax.load(trained)
  permute = Intervention("permute", seed=3)
  assert report["perplexity"] == pytest.approx(model.perplexity(model.config.data, "test", permute))
  assert report["own_perplexity"] == pytest.approx(model.perplexity(model.config.data, "test"))
  assert report["perplexity"] != report["own_perplexity"]
  pairs = pipeline.load_pairs(model.config.data, "test")[:16]
  assert report["bleu"] == model.evaluate(pairs, intervention=permute)["bleu"]
  hyps = (trained / "hyp_test.permute-seed3.txt").read_text().splitlines()
  assert hyps == model.evaluate(pairs, intervention=permute)["hypotheses"]


def test_uniform_attention_is_what_the_maps_then_show(trained):
  model = attnjax.load(trained)
  pairs = pipeline.load_pairs(model.config.data, "test")[:8]
  for t in model.attention(pairs, intervention=Intervention("uniform")):
    np.testing.assert_allclose(t.alignment, 1.0 / len(t.src_pieces), rtol=1e-6)
  # the model itself is unchanged by asking
  for t in model.attention(pairs):
    assert not np.allclose(t.alignment, 1.0 / len(t.src_pieces))


def test_gold_attention_follows_the_links_and_scores_teacher_forced_only(trained, monkeypatch, capsys):
  model = attnjax.load(trained)
  pairs = [("three hundred", "trois cents"), ("seven", "sept")]
  gold = ["0-0 1-1", "0-0"]
  for t, line in zip(model.attention(pairs, intervention=Intervention("gold"), gold=gold), gold):
    expected = alignment.gold_attention(t.src_pieces, t.tgt_pieces, *alignment.parse_pharaoh(line))
    rows = expected.sum(-1) > 0
    np.testing.assert_allclose(t.alignment[rows, 0, 0], expected[rows], atol=1e-6)
    assert rows.sum() == len(t.tgt_pieces) - 1  # every piece but the end of sentence is linked
  with pytest.raises(ConfigError, match="cannot decode"):
    model.evaluate(pairs, intervention=Intervention("gold"))
  with pytest.raises(ConfigError, match="no gold word alignments"):
    model.perplexity(model.config.data, "test", Intervention("gold"))
  # a corpus with gold links: its perplexity under them, from the CLI as from Python
  monkeypatch.setattr(pipeline, "load_alignments",
                      lambda cfg, split, prepared=None: _monotone_gold(pipeline.load_pairs(cfg, split, prepared)))
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--intervene", "gold"]) == 0
  assert "perplexity under gold" in capsys.readouterr().out
  report = json.loads((trained / "eval_test.gold.json").read_text())
  assert "bleu" not in report and not (trained / "hyp_test.gold.txt").exists()
  assert report["perplexity"] == pytest.approx(model.perplexity(model.config.data, "test", Intervention("gold")))


def test_head_importance_and_switched_off_heads(transformer, capsys):
  model = attnjax.load(transformer)
  importance = model.head_importance(model.config.data, "validation")
  m = model.model
  assert importance["encoder"].shape == (m.num_encoder_layers, m.num_heads)
  assert importance["cross"].shape == importance["decoder"].shape == (m.num_decoder_layers, m.num_heads)
  assert all(np.all(np.isfinite(v)) and np.all(v > 0) for v in importance.values())
  # a head switched off changes the perplexity; switching it off again compiles nothing new
  off = {"cross": [(0, 0)]}
  assert model.intervened(heads=off) is model.intervened(heads=off)
  assert model.perplexity(model.config.data, "test", heads=off) != model.perplexity(model.config.data, "test")
  assert cli.main(["attnjax", "eval", "--workdir", str(transformer), "--intervene", "heads:cross:0.0",
                   "--limit", "8"]) == 0
  assert json.loads((transformer / "eval_test.heads-cross-0.0.json").read_text())["intervention"] == "heads-cross-0.0"


@pytest.mark.parametrize("args,message", [
    (["--intervene", "shuffle"], "want uniform, permute, gold"),
    (["--intervene", "heads:cross:0"], "heads are LAYER.HEAD"),
    (["--intervene", "heads:self:0.0"], "KIND one of encoder, decoder, cross"),
    (["--intervene", "uniform", "--alignment"], "measure alignments without it"),
    (["--shift"], "--shift goes with --alignment"),
])
def test_intervene_refuses_bad_requests_in_one_line(trained, capsys, args, message):
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), *args]) == 2
  err = capsys.readouterr().err
  assert message in err and len(err.strip().splitlines()) == 1


def test_rnn_refuses_heads(trained, capsys):
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--intervene", "heads:cross:0.0"]) != 0
  assert "Transformer" in capsys.readouterr().err
  with pytest.raises(ConfigError, match="Transformer"):
    attnjax.load(trained).head_importance(None)


def test_eval_alignment_shift_reads_the_next_steps_attention(trained, tmp_path, capsys):
  (tmp_path / "a.src").write_text("three hundred\nseven\n")
  (tmp_path / "a.ref").write_text("trois cents\nsept\n")
  (tmp_path / "a.gold").write_text("0-0 1-1\n0-0\n")
  files = ["--src", str(tmp_path / "a.src"), "--ref", str(tmp_path / "a.ref"), "--gold", str(tmp_path / "a.gold")]
  assert cli.main(["attnjax", "eval", "--workdir", str(trained), "--alignment", "--shift", *files]) == 0
  assert "Shift-Att" in capsys.readouterr().out
  report = json.loads((trained / "alignment_a.src.shifted.json").read_text())
  expected = attnjax.load(trained).alignment_error(
      [("three hundred", "trois cents"), ("seven", "sept")], ["0-0 1-1", "0-0"], shift=True)
  assert report["shift"] is True and report["aer"] == expected["aer"]
