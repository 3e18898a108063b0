"""A trained model read from a workdir: what `eval`, `translate` and `align` use, and the
notebook API (`attnjax.load`):

    model = attnjax.load("runs/demo")
    model.translate(["the red car ."], beam=4)   # a list of translations
    (t,) = model.alignments(["the red car ."])   # t.alignment: [tgt, layers, heads, src]
    model.evaluate([("the red car .", "la voiture rouge .")])["bleu"]
    model.attention([("the red car .", "la voiture rouge .")])   # teacher-forced maps
    model.alignment_error(pairs, gold)          # AER of the attention against gold links

Parameters only are read (`checkpoint.read_params`): inference never imports training.
"""

import dataclasses
import functools
import math
import pathlib

import jax
import numpy as np

from attnjax.analysis import alignment as alignment_lib
from attnjax import config as config_lib
from attnjax.analysis import evaluate
from attnjax.errors import MismatchError
from attnjax.data.tokenizer import Tokenizers
from attnjax import models
from attnjax.models import intervention as intervention_lib
from attnjax.models import loss
from attnjax.models.intervention import Intervention
from attnjax.infer.sampling import Sampling
from attnjax import checkpoint
from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID, pad_rows, round_up
from attnjax.infer.translate import LENGTH_QUANTUM, Translation, Translator
from attnjax.workdir import load_config


@dataclasses.dataclass
class Trained:
  config: object
  tokenizers: object
  model: object
  params: object
  step: int
  gates: object = None  # the Transformer's head gates, when heads are switched off
  _translators: dict = dataclasses.field(default_factory=dict, repr=False)
  _forced_step: object = dataclasses.field(default=None, repr=False)
  _intervened: dict = dataclasses.field(default_factory=dict, repr=False)

  @property
  def variables(self) -> dict:
    return {"params": self.params} if self.gates is None else {"params": self.params, "gates": self.gates}

  def intervened(self, intervention: Intervention | None = None, heads: dict | None = None) -> "Trained":
    """This model with its cross-attention replaced (`intervention`, see
    `attnjax.models.intervention`) and the Transformer's `heads` switched off ({'encoder' |
    'decoder' | 'cross': [(layer, head), ...]}), on the same parameters; kept, so that asking
    again compiles nothing new. Without either: this model."""
    if intervention is None and not heads:
      return self
    key = (intervention, tuple(sorted((kind, tuple(sorted(h))) for kind, h in (heads or {}).items())))
    if key not in self._intervened:
      try:
        gates = models.head_gates(self.model, heads) if heads else None
        model = models.intervene(self.model, intervention)
      except ValueError as err:
        raise config_lib.ConfigError(str(err)) from None
      self._intervened[key] = Trained(self.config, self.tokenizers, model, self.params, self.step, gates)
    return self._intervened[key]

  def translator(self, beam_size: int | None = None, batch_size: int = 32,
                 sampling: Sampling | None = None, nbest: int = 0) -> Translator:
    """A translator with the workdir's decoding settings (`beam_size` overrides its beam;
    `sampling` draws instead of searching; `nbest` lists that many of the beam's best); one
    per setting and batch size, kept, so that repeated calls do not compile again."""
    dec = self.config.decode
    beam_size = dec.beam_size if beam_size is None else beam_size
    if sampling is not None:
      beam_size = 1
    key = (beam_size, batch_size, sampling, nbest)
    if key not in self._translators:
      self._translators[key] = Translator(
          self.model, self.variables, self.tokenizers,
          max_src_len=self.config.data.max_src_len, max_len=dec.max_len, beam_size=beam_size,
          alpha=dec.length_penalty, batch_size=batch_size, sampling=sampling, nbest=nbest)
    return self._translators[key]

  def alignments(self, sentences, beam: int | None = None, batch_size: int = 32,
                 sampling: Sampling | None = None, nbest: int = 0) -> list[Translation]:
    """Translations of `sentences` (a list, or one string) with their subword pieces and
    attention weights, [tgt pieces, layers, heads, src pieces] (None for a model without),
    and with `nbest` the beam's best hypotheses as (text, score, log-probability)."""
    sentences = [sentences] if isinstance(sentences, str) else list(sentences)
    return self.translator(beam, batch_size, sampling, nbest)(sentences)

  def translate(self, sentences, beam: int | None = None, batch_size: int = 32,
                sampling: Sampling | None = None) -> list[str]:
    """The translations of `sentences` (a list, or one string) as text; `sampling`
    (`attnjax.infer.sampling.Sampling(top_k=, top_p=, temperature=, seed=)`) draws them instead."""
    return [t.text for t in self.alignments(sentences, beam, batch_size, sampling)]

  def evaluate(self, pairs, beam: int | None = None, bucket_width: int = 10,
               batch_size: int = 32, intervention: Intervention | None = None,
               heads: dict | None = None) -> dict:
    """sacreBLEU's BLEU and chrF with signatures and BLEU by source length on (source,
    reference) pairs; the hypotheses under 'hypotheses'. Under an `intervention` or with
    `heads` off (see `intervened`), the translations are decoded so; the gold attention,
    known only for a reference, cannot decode."""
    if intervention is not None and intervention.kind == "gold":
      raise config_lib.ConfigError("the gold attention is known for the reference only: it scores "
                                   "teacher-forced (perplexity), it cannot decode")
    model = self.intervened(intervention, heads)
    report, hypotheses = evaluate.evaluate(model.translator(beam, batch_size), list(pairs),
                                           bucket_width)
    return {**report, "hypotheses": hypotheses}

  def attention(self, pairs, batch_size: int = 32, intervention: Intervention | None = None,
                heads: dict | None = None, gold=None) -> list[Translation]:
    """Teacher-forced cross-attention of each (source, reference): the model reads the
    reference, not its own output, so the maps line up with the reference's words (as
    alignment error rates are measured). Each result's `text` is the reference and its
    `alignment` [reference pieces + EOS, layers, heads, source pieces + EOS]; None for a
    model without attention. Under an `intervention` or with `heads` off (see `intervened`),
    the maps are those the model then uses; the gold intervention reads `gold`, one Pharaoh
    line per pair."""
    model = self.intervened(intervention, heads)
    if model is not self:
      return model.attention(pairs, batch_size, gold=gold)
    pairs = list(pairs)
    links = None
    if self.model.intervention is not None and self.model.intervention.kind == "gold":
      if gold is None:
        raise config_lib.ConfigError("the gold intervention needs the gold alignment of every pair")
      links = checked_gold(pairs, gold)
    translator = self.translator(1, batch_size)
    forced = self._forced()
    out = []
    for start in range(0, len(pairs), batch_size):
      chunk = pairs[start:start + batch_size]
      src_ids = [translator.encode_source(src) for src, _ in chunk]
      tgt_ids = [self.tokenizers.tgt.encode(ref)[:self.config.data.max_tgt_len - 1] for _, ref in chunk]
      src = pad_rows(src_ids, batch_size, round_up(max(map(len, src_ids)), LENGTH_QUANTUM))
      tgt_in = pad_rows([[BOS_ID] + t for t in tgt_ids], batch_size,
                        round_up(max(map(len, tgt_ids)) + 1, LENGTH_QUANTUM))
      extra = {}
      if links is not None:
        extra["gold"] = self._gold_rows(src_ids, [t + [EOS_ID] for t in tgt_ids],
                                        links[start:start + batch_size], src.shape, tgt_in.shape[1])
      weights = forced(self.variables, src, tgt_in, **extra)
      weights = None if weights is None else np.asarray(weights, np.float32)
      for row, ((source, reference), s, t) in enumerate(zip(chunk, src_ids, tgt_ids)):
        out.append(Translation(
            source=source, text=reference,
            src_pieces=[self.tokenizers.src.id_to_piece(i) for i in s],
            tgt_pieces=[self.tokenizers.tgt.id_to_piece(i) for i in t + [EOS_ID]],
            alignment=None if weights is None else weights[row, :len(t) + 1, :, :, :len(s)]))
    return out

  def _gold_rows(self, src_ids, tgt_ids, links, src_shape, tgt_len) -> np.ndarray:
    """The gold intervention's attention for a batch, [B, T, S]: `alignment.gold_attention`
    of each pair (its source ids and target ids with EOS, its (sure, possible) links)."""
    out = np.zeros((src_shape[0], tgt_len, src_shape[1]), np.float32)
    for row, (s, t, (sure, possible)) in enumerate(zip(src_ids, tgt_ids, links)):
      out[row, :len(t), :len(s)] = alignment_lib.gold_attention(
          [self.tokenizers.src.id_to_piece(i) for i in s], [self.tokenizers.tgt.id_to_piece(i) for i in t],
          sure, possible)
    return out

  def _forced(self):
    """The jitted teacher-forced pass that returns the cross-attention [B, T, L, H, S]."""
    if self._forced_step is None:
      def forced(variables, src, tgt_in, **extra):
        _, inter = self.model.apply(variables, src, tgt_in, mutable=["intermediates"], **extra)
        weights = inter.get("intermediates", {}).get("cross_attention")
        return None if weights is None else weights[0]
      self._forced_step = jax.jit(forced)
    return self._forced_step

  def alignment_error(self, pairs, gold, mass: float = 0.5, batch_size: int = 32,
                      shift: bool = False) -> dict:
    """Alignment error rate of the teacher-forced attention on (source, reference) `pairs`
    against `gold` (one Pharaoh line per pair, source word - target word), with links read
    off the word-level maps by argmax per target word and by `mass` (`alignment.mass_links`).
    With `shift`, the attention of the step that reads target piece j is read as piece j's
    (Chen et al. 2020, Shift-Att; `alignment.shifted`).

    Returns {'sentences', 'layers', 'heads', 'aer': {'argmax', 'mass'} of the mean map over
    layers and heads, 'per_head': {'argmax', 'mass'} as [layers][heads], 'diagonal': the
    monotone baseline's AER}. Pairs whose pieces do not spell the gold's words (cut at
    `data.max_src_len`) are left out and counted under 'skipped'.
    """
    pairs, gold = list(pairs), checked_gold(pairs, gold)
    maps, kept, skipped = [], [], 0
    for t, links in zip(self.attention(pairs, batch_size), gold):
      if t.alignment is None:
        raise config_lib.ConfigError(
            f"this model has no attention ({models.attention_setting(self.config.model)}): "
            "there is no alignment to measure")
      weights = alignment_lib.shifted(t.alignment) if shift else t.alignment
      words = alignment_lib.to_words(weights, t.src_pieces, t.tgt_pieces)  # [T, L, H, S]
      if words.shape[0] != len(t.text.split()) or words.shape[-1] != len(t.source.split()):
        skipped += 1
        continue
      maps.append(words)
      kept.append(links)
    if not maps:
      raise ValueError("no sentence pair left to measure (all cut at data.max_src_len?)")
    _, layers, heads, _ = maps[0].shape

    def rates(select):
      return {"argmax": alignment_lib.aer([alignment_lib.argmax_links(select(m)) for m in maps], kept),
              "mass": alignment_lib.aer([alignment_lib.mass_links(select(m), mass) for m in maps], kept)}

    per_head = [[rates(lambda m: m[:, l, h]) for h in range(heads)] for l in range(layers)]
    return {
        "sentences": len(maps), "skipped": skipped, "layers": layers, "heads": heads, "mass": mass,
        "shift": shift,
        "aer": rates(lambda m: m.mean(axis=(1, 2))),
        "per_head": {kind: [[cell[kind] for cell in row] for row in per_head]
                     for kind in ("argmax", "mass")},
        "diagonal": alignment_lib.aer(
            [alignment_lib.diagonal_links(m.shape[-1], m.shape[0]) for m in maps], kept),
    }

  def translate_file(self, source, output, beam: int | None = None, batch_size: int = 64,
                     progress: bool = True) -> int:
    """Translate a text file (one sentence per line, optionally .gz) into `output`, line for
    line: batches of sentences of similar length (the file sorted by length), the output in
    the input's order, written to a temporary file and renamed when complete. Returns the
    number of lines."""
    from attnjax.data.builders import read_text
    from attnjax.progress import Progress
    lines = read_text(source)
    translator = self.translator(beam, batch_size)
    order = sorted(range(len(lines)), key=lambda i: len(lines[i].split()))
    texts = [""] * len(lines)
    bar = Progress(len(lines), enabled=progress, unit="sentence")
    every = max(1, len(order) // batch_size // 10)  # off a terminal: about ten lines in all
    for n, start in enumerate(range(0, len(order), batch_size), 1):
      rows = [i for i in order[start:start + batch_size] if lines[i].strip()]
      for i, t in zip(rows, translator([lines[i] for i in rows])):
        texts[i] = t.text
      bar.update(len(order[start:start + batch_size]))
      if n % every == 0 or start + batch_size >= len(order):
        bar.log(min(start + batch_size, len(order)))
    bar.close()
    output = pathlib.Path(output)
    tmp = output.with_name(output.name + ".incomplete")
    tmp.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    tmp.replace(output)
    return len(lines)

  def perplexity(self, data_cfg, split: str, intervention: Intervention | None = None,
                 heads: dict | None = None) -> float:
    """exp(mean per-token negative log-likelihood) of `split` of `data_cfg`'s corpus,
    teacher-forced, no label smoothing; every pair counts (long ones cut to the model's
    data.max_src_len / max_tgt_len, as in `pipeline.eval_batches`). The corpus is read as
    text through this model's tokenizer, so any corpus can be scored, not only its own.
    Under an `intervention` or with `heads` off (see `intervened`); the gold intervention
    reads the corpus's gold alignments."""
    totals = self._loss_totals(data_cfg, split, intervention, heads)
    return math.exp(float(totals["nll"]) / max(float(totals["tokens"]), 1.0))

  def _batches(self, data_cfg, split: str, gold: bool = False):
    """`pipeline.eval_batches` of `split` read through this model's tokenizer at its lengths;
    with `gold`, each batch also holds the gold intervention's attention."""
    import ml_collections
    from attnjax.data import pipeline
    from attnjax.data.prepare import prepare
    prepared = prepare(data_cfg, progress=False)
    lines = None
    if gold:
      lines = pipeline.load_alignments(data_cfg, split, prepared)
      if lines is None:
        raise config_lib.ConfigError(f"{data_cfg.name} has no gold word alignments for the gold "
                                     "intervention (en_fr_synth has)")
      links = checked_gold(pipeline.load_pairs(data_cfg, split, prepared), lines)
    data_cfg = ml_collections.ConfigDict(data_cfg.to_dict())
    data_cfg.update(max_src_len=self.config.data.max_src_len, max_tgt_len=self.config.data.max_tgt_len)
    for batch in pipeline.eval_batches(data_cfg, split, num_devices=1, prepared=prepared,
                                       tokenizers=self.tokenizers):
      if lines is not None:
        rows = [i for i in batch["index"] if i >= 0]
        strip = lambda ids: [int(i) for i in ids if i != PAD_ID]
        batch["gold"] = self._gold_rows([strip(batch["src"][r]) for r in range(len(rows))],
                                        [strip(batch["tgt_out"][r]) for r in range(len(rows))],
                                        [links[i] for i in rows], batch["src"].shape,
                                        batch["tgt_in"].shape[1])
      yield batch

  def _loss_totals(self, data_cfg, split, intervention=None, heads=None) -> dict:
    """Summed loss terms (`models.loss.eval_sums`) over `split`, as `perplexity` reads it."""
    model = self.intervened(intervention, heads)
    gold = intervention is not None and intervention.kind == "gold"
    eval_step = jax.jit(functools.partial(loss.eval_sums, model=model.model))
    totals = None
    for batch in self._batches(data_cfg, split, gold):
      sums = eval_step(model.params, batch, gates=model.gates)
      totals = sums if totals is None else jax.tree.map(jax.numpy.add, totals, sums)
    return jax.device_get(totals)

  def head_importance(self, data_cfg, split: str = "validation") -> dict:
    """Michel et al. 2019's importance of every Transformer head: the mean over the batches
    of `split` of |dL/dgate|, L the batch's mean per-token negative log-likelihood and the
    gate the head's output scale (1: on). Returns {'encoder', 'decoder', 'cross': [layers,
    heads]} (numpy), per attention kind."""
    m = self.model
    try:
      ones = models.head_gates(m)
    except ValueError as err:
      raise config_lib.ConfigError(f"head importance: {err}") from None

    def mean_nll(gates, params, batch):
      sums = loss.eval_sums(params, batch, model=m, gates=gates)
      return sums["nll"] / jax.numpy.maximum(sums["tokens"], 1.0)

    grad = jax.jit(jax.grad(mean_nll))
    total, count = None, 0
    for batch in self._batches(data_cfg, split):
      magnitude = jax.tree.map(jax.numpy.abs, grad(ones, self.params, batch))
      total = magnitude if total is None else jax.tree.map(jax.numpy.add, total, magnitude)
      count += 1
    return {kind: np.asarray(value) / max(count, 1)
            for kind, value in intervention_lib.to_matrices(jax.device_get(total)).items()}


def checked_gold(pairs, gold) -> list[tuple[set, set]]:
  """`gold`'s Pharaoh lines parsed, one per (source, reference) pair, every link (source word
  i, target word j) within its pair's words; else a MismatchError naming the line."""
  pairs, gold = list(pairs), list(gold)
  if len(pairs) != len(gold):
    raise MismatchError(f"{len(pairs):,} sentence pairs but {len(gold):,} gold alignments")
  out = []
  for line, (text, (source, reference)) in enumerate(zip(gold, pairs), 1):
    try:
      sure, possible = alignment_lib.parse_pharaoh(text)
    except ValueError as err:
      raise MismatchError(f"line {line}: {err}") from None
    n_src, n_tgt = len(source.split()), len(reference.split())
    past = sorted((i, j) for i, j in possible if i >= n_src or j >= n_tgt)
    if past:
      raise MismatchError(f"line {line}: link {past[0][0]}-{past[0][1]} points past its sentence pair "
                          f"({n_src} source words, {n_tgt} target words); the gold lines must "
                          "follow the source and reference lines")
    out.append((sure, possible))
  return out


def checked(workdir) -> object:
  """The config of a workdir `load` can read (a folder `attnjax train` made, with a
  tokenizer and checkpoints), else the error that says what it lacks."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise config_lib.ConfigError(f"workdir {workdir} does not exist")
  config = load_config(workdir)
  if not (workdir / "tokenizer").is_dir():
    raise config_lib.ConfigError(f"{workdir} has no tokenizer/ directory; it was not made by `attnjax train`")
  if not (workdir / "checkpoints").is_dir():
    raise checkpoint.CheckpointError(f"{workdir} has no checkpoints yet; train first")
  return config


def load(workdir, step: int | None = None) -> Trained:
  """The config, tokenizers, model and parameters of the newest (or given) checkpoint."""
  workdir = pathlib.Path(workdir)
  config = checked(workdir)
  tokenizers = Tokenizers.load(workdir / "tokenizer")
  model = models.build(config.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)

  abstract = jax.eval_shape(lambda: models.init_params(model, 0))
  mngr = checkpoint.manager(workdir, read_only=True)
  try:
    saved = sorted(mngr.all_steps())
    if step is not None and step not in saved:
      raise checkpoint.CheckpointError(f"{workdir} has no checkpoint of step {step}; it has {saved}")
    try:
      restored = checkpoint.read_params(mngr, abstract, step)
    except checkpoint.CheckpointError:
      what = f"checkpoint {step} in {workdir} cannot" if step is not None else f"no checkpoint in {workdir} can"
      raise checkpoint.CheckpointError(
          f"{what} be read as the model that its config.json and tokenizer/ describe (vocabularies "
          f"of {tokenizers.src.vocab_size} and {tokenizers.tgt.vocab_size}): were they replaced?") from None
  finally:
    mngr.close()
  if restored is None:
    raise checkpoint.CheckpointError(f"{workdir} has no checkpoints yet; train first")
  step, params = restored
  return Trained(config, tokenizers, model, params, step)
