"""The `attnjax` command: flags and subcommands only; the work is done in importable modules.

    attnjax prepare   --config configs/default.py
    attnjax train     --config configs/default.py --workdir runs/x [--config.train.num_steps=2000]
    attnjax eval      --workdir runs/x [--split test | --src F --ref R] [--beam 4]
    attnjax eval      --workdir runs/x --alignment [--src F --ref R --gold G] [--shift]  (AER)
    attnjax eval      --workdir runs/x --intervene uniform|permute|gold|heads:cross:0.1  (ablations)
    attnjax translate --workdir runs/x [--beam 4] [--alignments out.jsonl] [sentence ...]  (or stdin)
    attnjax translate --workdir runs/x --input F --output O
    attnjax compare   --workdir A --workdir B [--split test | --src F --ref R]
    attnjax align     --workdir runs/x --src "..." --out align.png [--pieces]
    attnjax average   --workdir runs/x --last 5 [--out runs/x-avg5]
    attnjax bench     --model transformer --task train      (the speed protocol; --help for shapes)
"""

import ast
import json
import logging
import os
import pathlib
import re
import sys
from typing import Callable, NamedTuple

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from attnjax.errors import Error, MismatchError, UsageError

USAGE = __doc__.split("\n\n", 1)[1]


def _common(fv):
  flags.DEFINE_bool("quiet", False, "No progress bars.", flag_values=fv)


def _config_flags(fv):
  config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/default.py or "
                                  "configs/rnn_luong.py:score=dot; override fields with "
                                  "--config.train.num_steps=100.", flag_values=fv, lock_config=True)


def _workdir_flag(fv, required=True):
  flags.DEFINE_string("workdir", None, "Directory of the run: checkpoints, logs, config, tokenizer.",
                      flag_values=fv, required=required)


def _define_prepare(fv):
  _config_flags(fv)


def _define_train(fv):
  _config_flags(fv)
  _workdir_flag(fv)
  # Several processes (hosts): found by themselves under SLURM, Open MPI and on TPU VMs.
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for a multi-process "
                      "run outside SLURM, Open MPI and TPU VMs.", flag_values=fv)
  flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.", flag_values=fv)
  flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.", flag_values=fv)


def _define_average(fv):
  _workdir_flag(fv)
  flags.DEFINE_integer("last", 5, "Average the newest N checkpoints.", flag_values=fv)
  flags.DEFINE_string("out", None, "The new workdir (default: <workdir>-avg<N>).", flag_values=fv)


def _define_compare(fv):
  flags.DEFINE_multi_string("workdir", None, "Two workdirs: the baseline first.", flag_values=fv,
                            required=True)
  flags.DEFINE_integer("beam", None, "Beam size (default: each config's decode.beam_size).", flag_values=fv)
  flags.DEFINE_enum("split", "test", ["validation", "test"], "Split to score (the first workdir's corpus).",
                    flag_values=fv)
  _file_flags(fv)


def _define_reading(fv):
  """The flags of the commands that read one trained workdir: eval, translate, align."""
  _workdir_flag(fv)
  flags.DEFINE_integer("beam", None, "Beam size (default: the config's decode.beam_size; 1 = greedy).",
                       flag_values=fv)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).", flag_values=fv)


def _define_eval(fv):
  _define_reading(fv)
  flags.DEFINE_enum("split", "test", ["validation", "test"], "Split to score.", flag_values=fv)
  flags.DEFINE_integer("limit", 0, "Score only the first N sentences (0 = all).", flag_values=fv)
  flags.DEFINE_bool("alignment", False, "Measure the attention's alignment error rate against "
                    "gold word alignments (en_fr_synth's, or --gold) instead of BLEU.", flag_values=fv)
  flags.DEFINE_string("gold", None, "With --alignment --src/--ref: gold alignments, a Pharaoh "
                      "line per pair (i-j sure, ipj possible; source word i, target word j).",
                      flag_values=fv)
  flags.DEFINE_bool("shift", False, "With --alignment: read the attention of the step that reads "
                    "target word j as word j's (Shift-Att, Chen et al. 2020).", flag_values=fv)
  flags.DEFINE_string("intervene", None, "Score with the attention replaced: uniform, permute, "
                      "gold[:L,L] (teacher-forced only; the Transformer's decoder layers) or "
                      "heads:KIND:L.H,... (switch off heads; KIND encoder, decoder or cross).",
                      flag_values=fv)
  flags.DEFINE_integer("intervention_seed", 0, "With --intervene permute: the random seed.",
                       flag_values=fv)
  _file_flags(fv)


def _define_translate(fv):
  _define_reading(fv)
  flags.DEFINE_string("sampling", None, "Draw instead of searching: topk:K (from the K most "
                      "probable tokens) or nucleus:P (from the fewest holding mass P).", flag_values=fv)
  flags.DEFINE_float("temperature", 1.0, "With --sampling: divide log-probabilities by T.", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "With --sampling: the random seed.", flag_values=fv)
  flags.DEFINE_integer("nbest", 0, "Print the K best of the beam per sentence (K <= --beam) as "
                       "TSV: sentence index, rank, length-penalised score, log-probability, "
                       "translation.", flag_values=fv)
  flags.DEFINE_string("input", None, "A text file to translate, one sentence per line (.gz too).",
                      flag_values=fv)
  flags.DEFINE_string("output", None, "Where --input's translations go, line for line.", flag_values=fv)
  flags.DEFINE_string("alignments", None, "Also write each sentence's words, pieces and attention "
                      "(every layer and head) to this JSON-lines file.", flag_values=fv)


def _define_align(fv):
  _define_reading(fv)
  flags.DEFINE_string("src", None, "Source sentence to translate and draw.", flag_values=fv,
                      required=True)
  flags.DEFINE_string("out", "alignment.png", "Output PNG.", flag_values=fv)
  flags.DEFINE_bool("per_head", True, "Also draw every layer and head (Transformer).", flag_values=fv)
  flags.DEFINE_bool("pieces", False, "Draw subword pieces instead of words.", flag_values=fv)


def _file_flags(fv):
  flags.DEFINE_string("src", None, "A source file to score instead of a split (one sentence per "
                      "line, .gz too); needs --ref.", flag_values=fv)
  flags.DEFINE_string("ref", None, "The references of --src, line for line.", flag_values=fv)


def _require_config(fv):
  if fv["config"].value is None:
    raise UsageError("--config is required, e.g. --config configs/default.py")
  return fv["config"].value


def _sampling(fv):
  """--sampling topk:K | nucleus:P with --temperature and --seed, as a sampling.Sampling."""
  from attnjax.infer.sampling import Sampling
  spec, temperature = fv["sampling"].value, fv["temperature"].value
  if spec is None:
    if temperature != 1.0:
      raise UsageError("--temperature applies to sampling: add --sampling topk:K or nucleus:P")
    return None
  if fv["beam"].value not in (None, 1):
    raise UsageError(f"--sampling draws one translation per sentence; drop --beam={fv['beam'].value}")
  try:
    return Sampling.parse(spec, temperature, fv["seed"].value)
  except ValueError as err:
    raise UsageError(str(err)) from None


def _prepare(fv, positional, progress) -> int:
  from attnjax import config as config_lib
  from attnjax.data.prepare import prepare
  config = _require_config(fv)
  config_lib.validate(config)
  print(prepare(config.data, progress=progress).summary())
  return 0


def _train(fv, positional, progress) -> int:
  import jax
  from attnjax import parallel
  from attnjax.train.loop import train_and_evaluate
  config = _require_config(fv)
  parallel.initialize_distributed(fv["coordinator_address"].value, fv["num_processes"].value,
                                  fv["process_id"].value)
  metrics = train_and_evaluate(config, fv["workdir"].value, progress=progress)
  if jax.process_index() == 0:  # one summary, not one per process
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
  return 0


def _average(fv, positional, progress) -> int:
  from attnjax import outputs
  from attnjax.train.average import average
  out = fv["out"].value or f"{fv['workdir'].value.rstrip('/')}-avg{fv['last'].value}"
  outputs.output_dir(pathlib.Path(out).parent, "--out")
  step, steps = average(fv["workdir"].value, fv["last"].value, out)
  print(f"averaged the parameters of steps {', '.join(map(str, steps))} into {out} (step {step}); "
        f"`attnjax eval --workdir {out}` scores it")
  return 0


def _load(fv, command):
  """The workdir's trained model, after the beam is checked and before any output is written."""
  from attnjax.infer import trained as trained_lib
  _check_beam(fv)
  trained = trained_lib.load(fv["workdir"].value, fv["step"].value)
  _check_outputs(command, fv)
  return trained


def _chosen(fv, *names) -> dict:
  """The pairs to score and how, as the evaluators take them: --split or --src/--ref, and `names`."""
  return {"split": fv["split"].value, "src": fv["src"].value, "ref": fv["ref"].value,
          **{name: fv[name].value for name in names}}


def _measured(fv, evaluator: str, progress, **arguments) -> tuple[dict, pathlib.Path]:
  """`attnjax.evaluators`' figures for the workdir at --step, and the file they are kept in;
  the flags are checked first, as `_load` checks them."""
  from attnjax import evaluators
  from attnjax.infer import trained as trained_lib
  _check_beam(fv)
  trained_lib.checked(fv["workdir"].value)
  _check_outputs("eval", fv)
  return (evaluators.evaluate(fv["workdir"].value, evaluator, fv["step"].value, progress=progress, **arguments),
          evaluators.path_of(fv["workdir"].value, evaluator, **arguments))


def _eval(fv, positional, progress) -> int:
  from attnjax.analysis import evaluate
  if fv["shift"].value and not fv["alignment"].value:
    raise UsageError("--shift goes with --alignment")
  if fv["intervene"].value:
    return _eval_intervened(fv, progress)
  if fv["alignment"].value:
    return _eval_alignment(fv, progress)
  if fv["gold"].value:
    raise UsageError("--gold goes with --alignment")
  report, path = _measured(fv, "scores", progress, **_chosen(fv, "limit", "beam"))
  print(evaluate.format_table(report))
  print(f"scores in {path}, translations in {path.parent / report['hypotheses']}")
  return 0


def _eval_intervened(fv, progress) -> int:
  """`eval --intervene`: teacher-forced perplexity (of a split) and BLEU with the attention
  replaced or heads switched off, beside the model's own perplexity."""
  from attnjax.analysis import evaluate
  if fv["alignment"].value or fv["gold"].value:
    raise UsageError("--intervene scores perplexity and BLEU; measure alignments without it")
  report, path = _measured(fv, "intervened", progress,
                           **_chosen(fv, "limit", "beam", "intervene", "intervention_seed"))
  if "perplexity" in report:
    print(f"{report['split']}, teacher-forced perplexity under {report['intervention']}: "
          f"{report['perplexity']:.3f} (the model's own attention: {report['own_perplexity']:.3f})")
  if "bleu" in report:
    print(evaluate.format_table(report))
  print(f"scores in {path}" + (f", translations in {path.parent / report['hypotheses']}"
                               if "hypotheses" in report else ""))
  return 0


def _eval_alignment(fv, progress) -> int:
  """`eval --alignment`: AER of the teacher-forced attention against gold alignments."""
  from attnjax.analysis import alignment
  report, path = _measured(fv, "alignment", progress, **_chosen(fv, "gold", "limit", "shift"))
  print(alignment.format_report(report))
  print(f"kept in {path}")
  return 0


def _translate(fv, positional, progress) -> int:
  trained = _load(fv, "translate")
  if fv["input"].value or fv["output"].value:
    if not (fv["input"].value and fv["output"].value) or positional:
      raise UsageError("--input F --output O translate a file: give both, and no sentences")
    if fv["alignments"].value:
      raise UsageError("--alignments writes the attention of sentences given as arguments or on "
                       "stdin, not of an --input file")
    if os.path.abspath(fv["input"].value) == os.path.abspath(fv["output"].value):
      raise UsageError("--output would overwrite --input; write the translations elsewhere")
    count = trained.translate_file(fv["input"].value, fv["output"].value, fv["beam"].value,
                                   progress=progress)
    print(f"wrote {count:,} translations to {fv['output'].value}")
    return 0
  sentences = list(positional) or [l.rstrip("\n") for l in sys.stdin]
  sentences = [s for s in sentences if s.strip()]
  if not sentences:
    raise UsageError("nothing to translate: give sentences as arguments or one per line on stdin")
  sampling, nbest = _sampling(fv), fv["nbest"].value
  if nbest:
    beam = fv["beam"].value or trained.config.decode.beam_size
    if sampling is not None or not 1 <= nbest <= beam:
      raise UsageError(f"--nbest={nbest} lists the best of a beam: it needs 1 <= K <= --beam "
                       f"(here {beam}) and no --sampling")
    for i, t in enumerate(trained.alignments(sentences, beam, nbest=nbest)):
      for rank, (text, score, log_prob) in enumerate(t.nbest, 1):
        print(f"{i}\t{rank}\t{score:.4f}\t{log_prob:.4f}\t{text}")
    return 0
  translations = trained.alignments(sentences, fv["beam"].value, sampling=sampling)
  for t in translations:
    print(t.text)
  if fv["alignments"].value:
    from attnjax.analysis import alignment
    alignment.write_jsonl(translations, fv["alignments"].value)
    print(f"wrote the words, pieces and attention of {len(translations)} sentences to "
          f"{fv['alignments'].value}", file=sys.stderr)
  return 0


def _align(fv, positional, progress) -> int:
  from attnjax.analysis import alignment, viz
  from attnjax.models import attention_setting
  trained = _load(fv, "align")
  if not fv["src"].value.strip():
    raise UsageError("--src is empty: give the sentence to translate and draw")
  (t,) = trained.alignments(fv["src"].value, fv["beam"].value, batch_size=1)
  if t.alignment is None:
    raise UsageError(f"the model in {fv['workdir'].value} has no attention "
                     f"({attention_setting(trained.config.model)}): there is no alignment to draw")
  weights, src_labels, tgt_labels = t.alignment, t.src_pieces, t.tgt_pieces
  if not fv["pieces"].value:
    weights = alignment.to_words(t.alignment, t.src_pieces, t.tgt_pieces)
    src_labels, tgt_labels = alignment.words_of(t.src_pieces), alignment.words_of(t.tgt_pieces)
  path = viz.plot_alignment(weights, src_labels, tgt_labels, fv["out"].value,
                            per_head=fv["per_head"].value)
  print(t.text)
  print(f"wrote {path}")
  return 0


def _check_beam(fv) -> None:
  if fv["beam"].value is not None:
    from attnjax.infer.decode import check_beam
    check_beam(fv["beam"].value, "--beam")


def _check_outputs(command: str, fv) -> None:
  """Every path `command` will write, checked before the work (`attnjax.outputs`)."""
  from attnjax import outputs
  if command == "eval":  # the scores and hypotheses go beside the checkpoints
    outputs.output_dir(fv["workdir"].value, "--workdir")
  elif command == "translate":
    for name in ("output", "alignments"):
      if fv[name].value:
        outputs.output_file(fv[name].value, f"--{name}")
  elif command == "align":
    from attnjax.analysis import viz
    outputs.output_file(fv["out"].value, "--out", formats=viz.image_formats())


def _compare(fv, positional, progress) -> int:
  """Both workdirs translate the same pairs (`evaluators`' `scores`, made once and kept);
  sacreBLEU's paired tests say whether B differs."""
  from attnjax import evaluators, outputs
  from attnjax.analysis import evaluate
  from attnjax.infer import trained as trained_lib
  names = fv["workdir"].value
  if len(names) != 2:
    raise UsageError(f"compare takes two --workdir flags (the baseline first), not {len(names)}")
  _check_beam(fv)
  configs = [trained_lib.checked(name) for name in names]
  for name in names:  # each keeps its translations (`scores`): workdirs that take new files
    outputs.output_dir(name, "--workdir")
  first = configs[0].data
  pairs, what = evaluators.pairs_of(first, fv["split"].value, fv["src"].value, fv["ref"].value, progress)
  references = [r for _, r in pairs]
  systems = []
  for name, config in zip(names, configs):
    own = fv["src"].value or config.data.to_dict() == first.to_dict()
    report = evaluators.evaluate(name, "scores", split=fv["split"].value, src=fv["src"].value,
                                 ref=fv["ref"].value, limit=0, beam=fv["beam"].value,
                                 corpus=None if own else names[0], progress=progress)
    hypotheses = (pathlib.Path(name) / report["hypotheses"]).read_text().splitlines()
    if len(hypotheses) != len(references):
      raise MismatchError(f"{pathlib.Path(name) / report['hypotheses']} has {len(hypotheses):,} lines "
                          f"for {len(references):,} pairs; delete it and its eval_*.json to translate again")
    systems.append((name, hypotheses))
  bs_signature, bootstrap = evaluate.paired_bootstrap(systems, references)
  ar_signature, randomized = evaluate.approximate_randomization(systems, references)
  print(f"{len(pairs):,} sentences of {what}; {bs_signature}; {ar_signature}")
  for row, ar in zip(bootstrap, randomized):
    line = f"{row['system']}: BLEU {row['bleu']:.2f} (bootstrap mean {row['mean']:.2f} ± {row['ci']:.2f})"
    if row["p_value"] is not None:
      line += (f"   paired bootstrap p = {row['p_value']:.4f}   approximate randomization "
               f"p = {ar['p_value']:.4f}")
    print(line)
  return 0


class Command(NamedTuple):
  define: Callable  # define(flag_values): the command's flags
  run: Callable     # run(flag_values, positional arguments, progress) -> exit status


COMMANDS = {
    "prepare": Command(_define_prepare, _prepare),
    "train": Command(_define_train, _train),
    "eval": Command(_define_eval, _eval),
    "translate": Command(_define_translate, _translate),
    "align": Command(_define_align, _align),
    "average": Command(_define_average, _average),
    "compare": Command(_define_compare, _compare),
}  # and `bench`, which parses its own flags (they mirror the PyTorch reference's)


def main(argv=None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print("usage:\n" + USAGE)
    return 0
  command = argv[1]
  if command == "bench":  # its flags mirror the PyTorch reference's, so it parses its own
    from attnjax.speed import bench
    return bench.main(argv[2:])
  if command not in COMMANDS:
    print(f"attnjax: error: unknown command {command!r}; choose from {', '.join(COMMANDS)}, bench",
          file=sys.stderr)
    return 2
  fv = flags.FlagValues()
  _common(fv)
  COMMANDS[command].define(fv)
  if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[2:]):
    print(f"usage: attnjax {command} [flags]\n\n" + fv.get_help())
    return 0
  absl_logging.set_verbosity(absl_logging.ERROR)  # Orbax warns of routine things at WARNING
  logging.getLogger().setLevel(logging.WARNING)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  # Compiled programs are kept across runs, so eval, translate, align and a resumed train
  # reuse what an earlier command compiled.
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/attnjax/jax"))
  try:
    positional = _parse(fv, command, argv[2:])
    return COMMANDS[command].run(fv, positional, not fv["quiet"].value)
  except KeyboardInterrupt:
    print(f"attnjax {command}: interrupted", file=sys.stderr)
    return 130
  except Exception as err:  # noqa: BLE001 -- every known failure becomes one line, below
    from attnjax import parallel
    message = _one_line(err)
    if message is None:
      parallel.exit_now_if_distributed(1, show_traceback=True)
      raise
    print(f"attnjax {command}: error: {message}", file=sys.stderr)
    code = 2 if isinstance(err, (flags.Error, ValueError)) else 1
    parallel.exit_now_if_distributed(code)  # never wait on processes that may be gone
    return code


def _config_path(args) -> str | None:
  """The file part of `--config FILE[:arg]` or `--config=FILE[:arg]` in `args`."""
  for i, arg in enumerate(args):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].partition(":")[0]
    if arg == "--config" and i + 1 < len(args):
      return args[i + 1].partition(":")[0]
  return None


def _check_config_file(path: str | None) -> None:
  """A config file that cannot be a config: unparsable, or without get_config (read, not run)."""
  if path is None or not os.path.isfile(path):
    return  # ml_collections says that the file does not exist
  try:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
  except SyntaxError as err:
    raise UsageError(f"config file {path}, line {err.lineno}: {err.msg}") from None
  except (UnicodeDecodeError, OSError) as err:
    raise UsageError(f"config file {path} cannot be read: {err}") from None
  names = set()
  for node in tree.body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      names.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
      names.update((a.asname or a.name).split(".")[0] for a in node.names)
    elif isinstance(node, ast.Assign):
      names.update(t.id for t in node.targets if isinstance(t, ast.Name))
  if "get_config" not in names:
    raise UsageError(f"config file {path} defines no get_config(); a config file defines "
                     "`def get_config(): ...` returning an ml_collections.ConfigDict")


def _parse(fv, command, args):
  """Parse flags and load the config file; any failure is one UsageError line."""
  path = _config_path(args)
  _check_config_file(path)
  # ml_collections finds `--config.a.b=...` overrides in sys.argv, so it must hold these args.
  saved, sys.argv = sys.argv, [f"attnjax {command}"] + args
  try:
    positional = fv(sys.argv)[1:]
    if "config" in fv and fv["config"].value is not None:
      fv["config"].value.keys()  # a file that failed to load raises on first use: now
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as err:
    raise UsageError(_flag_message(err, path)) from None
  except Exception as err:  # noqa: BLE001 -- the config file's own code failed
    raise UsageError(f"config file {path}: get_config() raised {type(err).__name__}: {err}") from None
  finally:
    sys.argv = saved
  if positional and command != "translate":
    raise UsageError(f"unexpected arguments: {' '.join(positional)}")
  return positional


def _flag_message(err, config_path: str | None = None) -> str:
  """The useful line of an absl / ml_collections parsing error."""
  text = str(err).strip().replace("\\n", "\n").replace("\\'", "'")
  if text[:1] in "'\"" and text[-1:] == text[:1]:
    text = text[1:-1]
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  if "Traceback" in text:  # a config file's get_config raised: keep its own last line
    message = lines[-1].split(": ", 1)[-1]
    if config_path and config_path not in message:  # say which file, unless it says so
      kind = lines[-1].split(": ", 1)[0] if ": " in lines[-1] else "an error"
      message = f"config file {config_path}: get_config() raised {kind}: {message}"
    return message
  if "No such file or directory" in text:
    path = re.search(r"Attempted \[Relative path\]:\s*(\S+)", text)
    return f"config file {path.group(1) if path else text.split(':')[-1].strip()} does not exist"
  if isinstance(err, (AttributeError, KeyError)):
    field = lines[0].split()[0].strip(chr(39))
    hint = f": {lines[-1]}" if "Did you mean" in text else ""
    return f"no config field {field!r}{hint}"
  return " ".join(lines)


def _one_line(err: Exception) -> str | None:
  """The message for errors users cause; None for bugs, which keep their traceback."""
  from attnjax.parallel import peer_failure
  if (lost := peer_failure(err)) is not None:
    return lost
  if isinstance(err, (flags.Error, Error, OSError)):
    return " ".join(str(err).split()) or type(err).__name__
  return None


if __name__ == "__main__":
  sys.exit(main())
