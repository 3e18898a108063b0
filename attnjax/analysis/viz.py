"""Alignment heatmaps: source tokens along x, target tokens along y (Bahdanau et al. 2015, Fig. 3)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _heatmap(ax, weights, src_pieces, tgt_pieces, title=None):
  ax.imshow(weights, cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
  ax.set_xticks(range(len(src_pieces)), src_pieces, rotation=90, fontsize=8)
  ax.set_yticks(range(len(tgt_pieces)), tgt_pieces, fontsize=8)
  ax.xaxis.tick_top()
  if title:
    ax.set_title(title, fontsize=9, pad=40)


def plot_alignment(alignment: np.ndarray, src_pieces: list[str], tgt_pieces: list[str], path,
                   per_head: bool = True) -> str:
  """Draw `alignment` [tgt, layers, heads, src] to `path` (PNG).

  One layer and one head (an attentive RNN) gives a single heatmap. Several give the mean
  over layers and heads first, then one panel per layer and head when `per_head` is set.
  """
  alignment = np.asarray(alignment, np.float32)
  tgt, layers, heads, src = alignment.shape
  panels = [("", alignment.mean(axis=(1, 2)))]
  if layers * heads > 1:
    panels[0] = ("mean over layers and heads", panels[0][1])
    if per_head:
      panels += [(f"layer {l + 1} head {h + 1}", alignment[:, l, h]) for l in range(layers)
                 for h in range(heads)]
  cols = min(len(panels), 4)
  rows = math.ceil(len(panels) / cols)
  cell = max(3.0, 0.28 * max(src, tgt))
  fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, cell * rows + 0.6), squeeze=False)
  for ax, (title, weights) in zip(axes.flat, panels):
    _heatmap(ax, weights, src_pieces, tgt_pieces, title)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)


def image_formats() -> set[str]:
  """The file extensions (without dots) matplotlib can write a figure as."""
  fig = plt.figure()
  try:
    return set(fig.canvas.get_supported_filetypes())
  finally:
    plt.close(fig)
