"""`train_and_evaluate(config, workdir)`: the whole training job, read top to bottom.

Resuming is exact: the checkpoint holds the train state and the data iterator's position,
and the dropout randomness of step n is `fold_in(seed, n)`, so a run stopped and restarted
any number of times takes the same steps as one that never stopped.
"""

import contextlib
import json
import logging
import pathlib
import shutil
import time

import jax
import numpy as np

from attnjax import config as config_lib
from attnjax.data import pipeline
from attnjax.data.prepare import prepare
from attnjax.data.tokenizer import Tokenizers
from attnjax import models, outputs, parallel
from attnjax.analysis import evaluate
from attnjax.errors import Error, WorkdirBusy
from attnjax import workdir as workdir_lib
from attnjax.progress import Progress
from attnjax import checkpoint
from attnjax.train import steps
from attnjax.train.state import init_state
from attnjax.infer.translate import Translator


class TrainingError(Error, RuntimeError):
  """Training cannot go on (a non-finite loss, say); the message says at which step."""


class Preempted(Error, RuntimeError):
  """SIGTERM arrived; a checkpoint was written first."""


def build(config, tokenizers):
  return models.build(config.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)


def _sum(metrics_list):
  return jax.tree.map(lambda *xs: float(np.sum(xs)), *jax.device_get(metrics_list))


class _Log:
  """Metrics to a JSONL file and TensorBoard event files; process 0 only."""

  def __init__(self, workdir, enabled: bool):
    self.enabled = enabled
    if enabled:
      from tensorboardX import SummaryWriter
      self.jsonl = open(pathlib.Path(workdir) / "metrics.jsonl", "a")
      self.tb = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

  def write(self, step: int, **scalars):
    if not self.enabled:
      return
    self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
    self.jsonl.flush()
    for name, value in scalars.items():
      self.tb.add_scalar(name, value, step)

  def close(self):
    if self.enabled:
      self.jsonl.close()
      self.tb.close()


def validate(runner, state, translator, eval_batches, pairs) -> dict:
  """Validation loss and perplexity over `eval_batches`, BLEU on `pairs`."""
  sums = _sum([runner.eval_step(state, b) for b in eval_batches()])
  out = {"val_loss": sums["loss"] / max(sums["tokens"], 1.0),
         "val_ppl": float(np.exp(min(sums["nll"] / max(sums["tokens"], 1.0), 50.0)))}
  if pairs:
    translator.variables = {"params": runner.params(state)}
    report, _ = evaluate.evaluate(translator, pairs)
    out["val_bleu"] = report["bleu"]
  return out


def train_and_evaluate(config, workdir, progress: bool = True) -> dict:
  """Train `config` in `workdir` (resuming what is there) and return the last metrics.

  Everything that can be checked before the work is: the config, the batch against the
  devices, a workdir made by another config, a workdir that cannot be written, and a workdir
  another run holds (`attnjax.workdir.lock`).
  """
  config_lib.validate(config)
  workdir = pathlib.Path(workdir)
  parallel.check_batch_divides(config.data.batch_size,
                               len(parallel.select_devices(config.parallel.num_devices)))
  if (workdir / "config.json").exists():
    workdir_lib.check_compatible(config, workdir_lib.load_config(workdir))
  outputs.output_dir(workdir, "--workdir")
  with _own(workdir):
    return _train(config, workdir, progress)


@contextlib.contextmanager
def _own(workdir):
  """The workdir's lock, taken by process 0 and checked by all: refused there, every process stops."""
  with contextlib.ExitStack() as stack:
    refused = None
    if jax.process_index() == 0:
      try:
        stack.enter_context(workdir_lib.lock(workdir))
      except WorkdirBusy as err:
        refused = err
    if parallel.from_lead(refused is not None):
      raise refused or WorkdirBusy(f"{workdir} is in use by {workdir_lib.holder(workdir)}: process 0 "
                                   "could not take its lock")
    yield


def _train(config, workdir: pathlib.Path, progress: bool) -> dict:
  t_cfg = config.train
  lead = jax.process_index() == 0

  # ---- Input pipeline and tokenizers (prepared once per data dir, copied into the workdir).
  # A new workdir gets the config; process 0 prepares first, the others then find the
  # prepared corpus on the shared disk.
  prepared = parallel.lead_first(lambda: prepare(config.data, progress=progress and lead), "prepare")
  tokenizers = Tokenizers.load(prepared.tokenizer_dir)
  if lead:
    workdir_lib.save_config(config, workdir)
    if not (workdir / "tokenizer").exists():
      shutil.copytree(prepared.tokenizer_dir, workdir / "tokenizer")

  # ---- Model, optimizer and the parallel step.
  model = build(config, tokenizers)
  runner = parallel.make_runner(config.parallel, lambda axis: steps.bind(model, t_cfg, axis))
  local_devices = len(runner.local_devices)   # this process reads only its slice of each batch
  train_iter = pipeline.train_iterator(config.data, seed=config.seed, prepared=prepared,
                                       num_devices=local_devices)
  eval_batches = lambda: pipeline.eval_batches(config.data, "validation", prepared=prepared,
                                               num_devices=local_devices)
  bleu_pairs = pipeline.load_pairs(config.data, "validation", prepared)[: t_cfg.eval_samples]
  translator = Translator(model, None, tokenizers, max_src_len=config.data.max_src_len,
                          max_len=config.decode.max_len, batch_size=min(64, max(len(bleu_pairs), 1)))

  # ---- Checkpoints: resume from the newest readable one, if any.
  state = init_state(model, t_cfg, config.seed)
  mngr = checkpoint.manager(workdir, keep=t_cfg.keep_checkpoints)
  meta = {"best_bleu": None, "evals_without_gain": 0, "skipped_updates": 0}
  restored = checkpoint.restore(mngr, runner.abstract_state(state))
  if restored is not None:
    step0, state, data_state, meta = restored
    train_iter.set_state(data_state)
    logging.info("resumed from step %d (%s): parameters, optimizer state, data position", step0,
                 mngr.directory / str(step0))
    if lead:
      print(f"resumed {workdir} at step {step0} of {t_cfg.num_steps} "
            f"(optimizer, learning-rate schedule and data position restored)")
  state = runner.put_state(state)
  start = int(jax.device_get(runner.checkpointable(state).step))
  cost = _Cost(config, tokenizers.tgt.vocab_size, meta)
  # a train section from before train.prng_impl: JAX's default generator, as those runs had
  dropout_rng = jax.random.fold_in(steps.rng_key(config.seed, t_cfg.get("prng_impl", "threefry2x32")), 1)

  def save(step, bleu=None):
    checkpoint.save(mngr, step, runner.checkpointable(state), train_iter.get_state(),
                    dict(meta, config=json.loads(config.to_json_best_effort())), bleu)

  stop = parallel.StopRequest()   # SIGTERM; with several processes, agreed on a common step
  log = _Log(workdir, lead)
  bar = Progress(t_cfg.num_steps, start, enabled=progress and lead)
  window, t_window, last = [], time.perf_counter(), {}

  # ---- The loop.
  try:
    prev = None
    for step in range(start, t_cfg.num_steps):
      batch = next(train_iter)
      state, metrics = runner.train_step(state, batch, dropout_rng)
      cost.step(batch)
      done = step + 1
      if prev is not None:   # the previous step's flag: reading it waits for that step only
        _check_finite(prev, done - 1, t_cfg.nan_policy, meta)
      prev = metrics
      window.append(metrics)
      bar.update(1)

      if done % t_cfg.log_every == 0 or done == t_cfg.num_steps:
        sums = _sum(window)
        elapsed = time.perf_counter() - t_window
        last = {"loss": sums["loss"] / max(sums["tokens"], 1.0),
                "accuracy": sums["correct"] / max(sums["tokens"], 1.0),
                "tgt_tokens_per_s": sums["tokens"] / elapsed, "grad_norm": sums["grad_norm"] / len(window)}
        log.write(done, **last, **cost.totals())
        bar.log(done, loss=f"{last['loss']:.3f}", tok_s=f"{last['tgt_tokens_per_s']:.0f}")
        window, t_window = [], time.perf_counter()

      bleu = None
      if done % t_cfg.eval_every == 0 or done == t_cfg.num_steps:
        jax.block_until_ready(metrics)
        cost.pause()
        scores = validate(runner, state, translator, eval_batches, bleu_pairs)
        log.write(done, **scores, **cost.totals())
        cost.resume()
        last.update(scores)
        bleu = scores.get("val_bleu")
        if lead:
          bar.write(f"step {done}: " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        if bleu is not None:
          if meta["best_bleu"] is None or bleu > meta["best_bleu"]:
            meta["best_bleu"], meta["evals_without_gain"] = bleu, 0
          else:
            meta["evals_without_gain"] += 1
        t_window = time.perf_counter()

      early = (t_cfg.early_stopping_patience > 0
               and meta["evals_without_gain"] >= t_cfg.early_stopping_patience)
      stopping = stop(done)
      if (done % t_cfg.checkpoint_every == 0 or done == t_cfg.num_steps or early
          or stopping or bleu is not None):
        _check_finite(prev, done, t_cfg.nan_policy, meta)   # never checkpoint past a bad step
        prev = None
        save(done, bleu)
      if stopping:
        checkpoint.wait(mngr)
        raise Preempted(f"stopped by SIGTERM after step {done}; checkpoint saved, run the same "
                        f"command to resume")
      if early:
        if lead:
          bar.write(f"early stopping at step {done}: no BLEU gain in "
                     f"{meta['evals_without_gain']} evaluations (best {meta['best_bleu']:.2f})")
        break
    checkpoint.wait(mngr)
  finally:
    bar.close()
    mngr.close()
    log.close()
    stop.close()
  last["step"] = int(jax.device_get(runner.checkpointable(state).step))
  last["skipped_updates"] = meta["skipped_updates"]
  return last


class _Cost:
  """What training has spent so far, kept in the checkpoint's `meta` so that it adds up across
  resumed sessions: `train_s`, the wall time of the training steps (validation excluded, the
  first steps' compilation included); `tgt_tokens`, the target tokens trained on (padding
  excluded); `train_flops`, three times the forward matrix products of each batch's padded shape
  (`attnjax.models.flops`; absent for a model it does not count). Counted from the batches on
  the host, so nothing waits on the device; with several processes, this process's share times
  their number. They make the learning curves against time and FLOPs that Vaswani et al.'s
  Table 2 compares families by."""

  def __init__(self, config, vocab: int, meta: dict):
    self.model, self.vocab, self.meta = config.model, vocab, meta
    for key in ("train_s", "tgt_tokens", "train_flops"):
      meta.setdefault(key, 0.0)
    self.shapes = {}
    self.processes = jax.process_count()
    self.mark = time.perf_counter()

  def step(self, batch) -> None:
    src, tgt = batch["src"].shape, batch["tgt_out"].shape
    if (src, tgt) not in self.shapes:
      from attnjax.models import flops
      rows = int(np.prod(src[:-1]))
      try:
        self.shapes[src, tgt] = 3 * flops.forward(self.model, self.vocab, rows, src[-1], tgt[-1])
      except ValueError:
        self.shapes[src, tgt] = None
    step_flops = self.shapes[src, tgt]
    self.meta["train_flops"] = None if step_flops is None or self.meta["train_flops"] is None else (
        self.meta["train_flops"] + step_flops * self.processes)
    self.meta["tgt_tokens"] += float(np.sum(batch["tgt_out"] != steps.PAD_ID)) * self.processes

  def pause(self) -> None:
    if self.mark is not None:
      self.meta["train_s"] += time.perf_counter() - self.mark
      self.mark = None

  def resume(self) -> None:
    self.mark = time.perf_counter()

  def totals(self) -> dict:
    if self.mark is not None:  # the clock runs: its time so far is added, and it runs on
      self.pause()
      self.resume()
    out = {"train_s": round(self.meta["train_s"], 3), "tgt_tokens": int(self.meta["tgt_tokens"])}
    if self.meta["train_flops"] is not None:
      out["train_flops"] = self.meta["train_flops"]
    return out


def _check_finite(metrics, step: int, policy: str, meta: dict) -> None:
  if not float(metrics["nonfinite"]):
    return
  if policy == "stop":
    raise TrainingError(f"non-finite loss or gradient at step {step}; the update was not applied and "
                        f"no checkpoint of it was written (set train.nan_policy=skip to skip such updates)")
  meta["skipped_updates"] += 1
  logging.warning("non-finite loss or gradient at step %d: update skipped (%d so far)", step,
                  meta["skipped_updates"])
