"""How well attention aligns: subword maps merged into words, links read off them, and the
alignment error rate against gold links (Och & Ney 2003).

    words = word_spans(pieces)                         # piece indices of each word
    w = to_words(attention, src_pieces, tgt_pieces)    # [target words, ..., source words]
    aer([argmax_links(w)], [(sure, possible)])         # 0 is perfect

A source word's weight is the sum over its pieces (the mass the decoder put on the word); a
target word's row is the mean over its pieces. Links are (source word, target word) pairs,
as in the Pharaoh lines of `attnjax.data.synth.aligned`.
"""

from __future__ import annotations

import re

import numpy as np

WORD_START = "\u2581"  # SentencePiece's mark of a piece that begins a word
EOS_PIECE = "</s>"


def parse_pharaoh(text: str) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
  """(sure, possible) links of a Pharaoh line such as "0-0 1p2"; possible includes sure."""
  sure, possible = set(), set()
  for link in text.split():
    match = re.fullmatch(r"(\d+)([-p])(\d+)", link)
    if not match:
      raise ValueError(f"not an alignment link {link!r} (want i-j or ipj) in {text!r}")
    pair = (int(match[1]), int(match[3]))
    possible.add(pair)
    if match[2] == "-":
      sure.add(pair)
  return sure, possible


def word_spans(pieces: list[str]) -> list[list[int]]:
  """The indices of the pieces of each word: a word starts at a piece that begins with ▁;
  the end-of-sentence piece belongs to no word."""
  spans: list[list[int]] = []
  for i, piece in enumerate(pieces):
    if piece == EOS_PIECE:
      continue
    if piece.startswith(WORD_START) or not spans:
      spans.append([i])
    else:
      spans[-1].append(i)
  return spans


def words_of(pieces: list[str]) -> list[str]:
  """The words the pieces spell (▁ removed)."""
  return ["".join(pieces[i] for i in span).replace(WORD_START, "") for span in word_spans(pieces)]


def to_words(attention: np.ndarray, src_pieces: list[str], tgt_pieces: list[str]) -> np.ndarray:
  """[tgt pieces, *middle, src pieces] -> [tgt words, *middle, src words]: the sum over a
  source word's pieces, then the mean over a target word's pieces."""
  attention = np.asarray(attention, np.float32)
  src_spans, tgt_spans = word_spans(src_pieces), word_spans(tgt_pieces)
  out = np.zeros((len(tgt_spans), *attention.shape[1:-1], len(src_spans)), np.float32)
  for i, span in enumerate(src_spans):
    summed = attention[..., span].sum(-1)
    for j, rows in enumerate(tgt_spans):
      out[j, ..., i] = summed[rows].mean(0)
  return out


def gold_attention(src_pieces: list[str], tgt_pieces: list[str], sure: set, possible: set) -> np.ndarray:
  """The gold alignment as attention over pieces, [tgt pieces, src pieces]: each piece of
  target word j spreads its weight evenly over the pieces of the source words linked to j
  (its sure links; its possible ones where it has no sure one). The rows of a target word
  without a link, and of the end-of-sentence piece, are zero: the gold intervention keeps the
  model's own weights there. Links to words past the pieces (a pair cut to the model's
  lengths) are left out."""
  src_spans, tgt_spans = word_spans(src_pieces), word_spans(tgt_pieces)
  out = np.zeros((len(tgt_pieces), len(src_pieces)), np.float32)
  for j, rows in enumerate(tgt_spans):
    linked = sorted({i for i, jj in sure if jj == j} or {i for i, jj in possible if jj == j})
    columns = [c for i in linked if i < len(src_spans) for c in src_spans[i]]
    if columns:
      out[np.ix_(rows, columns)] = 1.0 / len(columns)
  return out


def shifted(attention: np.ndarray) -> np.ndarray:
  """Attention [tgt pieces + EOS, ...] read one step later (Chen et al. 2020, Shift-Att): row
  j becomes the attention of the step whose input is target piece j, the step that predicts
  piece j + 1; the end-of-sentence row, which no step after it reads, is zero."""
  attention = np.asarray(attention, np.float32)
  return np.concatenate([attention[1:], np.zeros_like(attention[:1])], axis=0)


def argmax_links(weights: np.ndarray) -> set[tuple[int, int]]:
  """One link per target word, to the source word with the largest weight. weights [tgt, src]."""
  return {(int(i), j) for j, i in enumerate(np.argmax(weights, axis=-1))}


def mass_links(weights: np.ndarray, mass: float = 0.5) -> set[tuple[int, int]]:
  """Per target word, the fewest source words that hold at least `mass` of its weight
  (of the weight on words, so the end-of-sentence piece does not count)."""
  links = set()
  for j, row in enumerate(np.asarray(weights, np.float64)):
    order = np.argsort(-row, kind="stable")
    cumulative = np.cumsum(row[order]) / max(row.sum(), 1e-12)
    keep = int(np.searchsorted(cumulative, mass - 1e-9)) + 1
    links.update((int(i), j) for i in order[:keep])
  return links


def diagonal_links(num_src: int, num_tgt: int) -> set[tuple[int, int]]:
  """The monotone baseline: target word j links to the source word at the same relative place."""
  return {(min(num_src - 1, int((j + 0.5) * num_src / num_tgt)), j) for j in range(num_tgt)}


def aer(predicted: list[set], gold: list[tuple[set, set]]) -> float:
  """Alignment error rate over a corpus: 1 - (|A∩S| + |A∩P|) / (|A| + |S|), the counts summed
  over sentences; `gold` holds (sure, possible) per sentence, possible including sure."""
  if len(predicted) != len(gold):
    raise ValueError(f"{len(predicted)} predicted alignments for {len(gold)} gold ones")
  hits = size = 0
  for links, (sure, possible) in zip(predicted, gold):
    hits += len(links & sure) + len(links & possible)
    size += len(links) + len(sure)
  return 1.0 - hits / size if size else 0.0


def format_report(report: dict) -> str:
  """`Trained.alignment_error`'s report as a table: the mean map, the diagonal and, for
  several layers or heads, AER (argmax) per layer and head."""
  shift = ", shifted: step j+1 read as word j's (Shift-Att)" if report.get("shift") else ""
  lines = [f"alignment error rate on {report['sentences']} sentences (teacher-forced, word level{shift}; "
           f"lower is better)",
           *(f"  {label:<38}{value:.3f}" for label, value in (
               ("attention, argmax per target word", report["aer"]["argmax"]),
               (f"attention, mass {report['mass']:.1f} per target word", report["aer"]["mass"]),
               ("monotone diagonal (baseline)", report["diagonal"])))]
  if report["layers"] * report["heads"] > 1:
    lines += ["", "  argmax AER  " + " ".join(f"{f'head {h + 1}':>7}" for h in range(report["heads"]))]
    for layer, row in enumerate(report["per_head"]["argmax"], 1):
      lines.append(f"  layer {layer:<5}" + " ".join(f"{value:7.3f}" for value in row))
  if report.get("skipped"):
    lines.append(f"  ({report['skipped']} pairs cut at data.max_src_len or max_tgt_len left out)")
  return "\n".join(lines)


def record(translation) -> dict:
  """One translation's words, pieces and attention as plain JSON: `attention` over pieces
  [target pieces, layers, heads, source pieces], `word_attention` over words (`to_words`)."""
  t = translation
  out = {"source": t.source, "translation": t.text,
         "src_words": words_of(t.src_pieces), "tgt_words": words_of(t.tgt_pieces),
         "src_pieces": list(t.src_pieces), "tgt_pieces": list(t.tgt_pieces),
         "attention": None, "word_attention": None}
  if t.alignment is not None:
    out["attention"] = np.round(np.asarray(t.alignment, np.float64), 5).tolist()
    words = to_words(t.alignment, t.src_pieces, t.tgt_pieces)
    out["word_attention"] = np.round(words.astype(np.float64), 5).tolist()
  return out


def write_jsonl(translations, path) -> int:
  """`record` of each translation, one JSON object a line, written whole or not at all."""
  import json
  import pathlib
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".incomplete")
  with open(tmp, "w", encoding="utf-8") as f:
    for t in translations:
      f.write(json.dumps(record(t), ensure_ascii=False) + "\n")
  tmp.replace(path)
  return len(translations)
