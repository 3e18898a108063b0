"""Attention as alignment: pieces merged into words, links, AER, against hand-computed cases."""

import numpy as np
import pytest

from attnjax.analysis import alignment

SRC = ["\u2581the", "\u2581re", "d", "\u2581car", "</s>"]  # the red car
TGT = ["\u2581la", "\u2581voit", "ure", "\u2581rouge", "</s>"]  # la voiture rouge


def test_parse_pharaoh_reads_sure_and_possible_links():
  sure, possible = alignment.parse_pharaoh("0-0 1p2 2-1")
  assert sure == {(0, 0), (2, 1)} and possible == {(0, 0), (1, 2), (2, 1)}
  assert alignment.parse_pharaoh("") == (set(), set())
  with pytest.raises(ValueError, match="1:2"):
    alignment.parse_pharaoh("0-0 1:2")


def test_word_spans_follow_the_word_marks_and_skip_eos():
  assert alignment.word_spans(SRC) == [[0], [1, 2], [3]]
  assert alignment.words_of(SRC) == ["the", "red", "car"]
  assert alignment.word_spans(["d", "\u2581x", "</s>"]) == [[0], [1]]  # a first piece without ▁


def test_to_words_sums_source_pieces_and_averages_target_pieces():
  a = np.array([  # rows: la, voit, ure, rouge, </s>; columns: the, re, d, car, </s>
      [0.7, 0.1, 0.0, 0.1, 0.1],
      [0.0, 0.1, 0.1, 0.8, 0.0],
      [0.1, 0.0, 0.1, 0.6, 0.2],
      [0.0, 0.5, 0.4, 0.1, 0.0],
      [0.0, 0.0, 0.0, 0.0, 1.0],
  ])
  words = alignment.to_words(a, SRC, TGT)
  expected = np.array([[0.7, 0.1, 0.1],
                       [0.05, 0.15, 0.7],  # mean of (0, .2, .8) and (.1, .1, .6)
                       [0.0, 0.9, 0.1]])
  np.testing.assert_allclose(words, expected, atol=1e-6)
  # layers and heads in the middle are kept
  stacked = np.stack([a, a[:, ::-1]], axis=1)[:, :, None, :]  # [T, 2, 1, S]
  assert alignment.to_words(stacked, SRC, TGT).shape == (3, 2, 1, 3)
  np.testing.assert_allclose(alignment.to_words(stacked, SRC, TGT)[:, 0, 0], expected, atol=1e-6)
  assert alignment.to_words(np.ones((1, 5)), SRC, ["</s>"]).shape == (0, 3)  # an empty output


def test_links_by_argmax_and_by_mass():
  w = np.array([[0.7, 0.2, 0.1],
                [0.2, 0.35, 0.45],
                [0.0, 0.9, 0.1]])
  assert alignment.argmax_links(w) == {(0, 0), (2, 1), (1, 2)}
  assert alignment.mass_links(w, 0.5) == {(0, 0), (2, 1), (1, 1), (1, 2)}  # row 1 needs two words
  assert alignment.mass_links(w, 0.9) == {(0, 0), (1, 0), (2, 1), (1, 1), (0, 1), (1, 2)}
  assert alignment.mass_links(np.array([[0.5, 0.5]]), 0.5) == {(0, 0)}  # exactly the mass: one word


def test_diagonal_baseline():
  assert alignment.diagonal_links(3, 3) == {(0, 0), (1, 1), (2, 2)}
  assert alignment.diagonal_links(2, 4) == {(0, 0), (0, 1), (1, 2), (1, 3)}
  assert alignment.diagonal_links(4, 2) == {(1, 0), (3, 1)}


def test_aer_by_hand():
  sure, possible = {(0, 0)}, {(0, 0), (1, 1)}
  assert alignment.aer([{(0, 0), (1, 1), (2, 1)}], [(sure, possible)]) == pytest.approx(1 - 3 / 4)
  assert alignment.aer([{(0, 0)}], [(sure, possible)]) == 0.0  # every sure link, nothing outside
  assert alignment.aer([{(1, 0)}], [(sure, possible)]) == 1.0
  # summed over the corpus, not averaged over sentences
  two = alignment.aer([{(0, 0)}, {(5, 5)}], [(sure, possible), ({(1, 1)}, {(1, 1)})])
  assert two == pytest.approx(1 - 2 / 4)
  with pytest.raises(ValueError, match="1 predicted alignments for 2 gold"):
    alignment.aer([set()], [(sure, possible)] * 2)


@pytest.mark.slow
def test_teacher_forced_attention_and_its_aer(trained):
  import attnjax
  model = attnjax.load(trained)
  pairs = [("three hundred", "trois cents"), ("seven", "sept")]
  first, second = model.attention(pairs)
  assert first.text == "trois cents" and first.tgt_pieces[-1] == "</s>"
  assert first.alignment.shape == (len(first.tgt_pieces), 1, 1, len(first.src_pieces))
  np.testing.assert_allclose(first.alignment.sum(-1), 1.0, atol=1e-5)  # a softmax over the source
  assert second.alignment.shape[0] == len(second.tgt_pieces)
  # the same maps as a batch of one
  (alone,) = model.attention(pairs[:1], batch_size=1)
  np.testing.assert_allclose(alone.alignment, first.alignment, atol=1e-5)
  report = model.alignment_error(pairs, ["0-0 1-1", "0-0"])
  assert report["sentences"] == 2 and (report["layers"], report["heads"]) == (1, 1)
  assert report["diagonal"] == 0.0  # the gold here is the diagonal
  assert 0.0 <= report["aer"]["argmax"] <= 1.0
  assert report["per_head"]["argmax"] == [[report["aer"]["argmax"]]]
  with pytest.raises(ValueError, match="2 sentence pairs but 1 gold"):
    model.alignment_error(pairs, ["0-0"])


def test_shift_att_reads_each_word_off_the_step_that_reads_it():
  """A decoder that looks, at step i, at the source word aligned with its input (target word
  i - 1): plain AER counts every link wrong, Shift-Att's reading every link right."""
  src_pieces = ["▁a", "▁b", "▁c", "</s>"]
  tgt_pieces = ["▁x", "▁y", "▁z", "</s>"]
  gold = [({(0, 0), (1, 1), (2, 2)}, {(0, 0), (1, 1), (2, 2)})]
  attention = np.zeros((4, 4), np.float32)
  attention[0, 3] = 1.0             # step 0 reads BOS: on the end of the source
  for i in range(1, 4):
    attention[i, i - 1] = 1.0       # step i reads word i - 1 and looks at its source word
  plain = alignment.to_words(attention, src_pieces, tgt_pieces)
  shifted = alignment.to_words(alignment.shifted(attention), src_pieces, tgt_pieces)
  assert alignment.aer([alignment.argmax_links(plain)], gold) > 0.6
  assert alignment.aer([alignment.argmax_links(shifted)], gold) == 0.0
  np.testing.assert_array_equal(alignment.shifted(attention)[-1], 0.0)


def test_gold_attention_spreads_each_link_over_the_pieces_of_its_words():
  src_pieces, tgt_pieces = ["▁ab", "c", "▁d", "</s>"], ["▁x", "y", "▁z", "</s>"]
  sure, possible = alignment.parse_pharaoh("0-0 1p0 1p1")
  got = alignment.gold_attention(src_pieces, tgt_pieces, sure, possible)
  np.testing.assert_allclose(got[0], [0.5, 0.5, 0, 0])   # x's sure link: both pieces of "abc"
  np.testing.assert_allclose(got[1], got[0])              # y is x's second piece
  np.testing.assert_allclose(got[2], [0, 0, 1, 0])        # z: possible only
  np.testing.assert_array_equal(got[3], 0.0)              # end of sentence: the model's own
