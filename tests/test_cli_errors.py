"""A catalogue of bad inputs: each gets one clear line on stderr, a non-zero exit, and no traceback.

Config-value checks are in test_config.py and bad data files in tests/data; this file goes
through the command line as a user would.
"""

import os
import pathlib
import shutil

import pytest

from attnjax import cli

DEFAULT = "configs/default.py"


def _run(args, capsys, stdin=None, monkeypatch=None):
  if stdin is not None:
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
  code = cli.main(["attnjax"] + args)
  captured = capsys.readouterr()
  return code, captured.err


CASES = [
    # (arguments, expected fragment of the one-line message)
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["train", "--workdir", "{tmp}/w"], "--config is required"),
    (["train", "--config", DEFAULT], "--workdir"),
    (["train", "--config", "configs/nope.py", "--workdir", "{tmp}/w"], "config file configs/nope.py does not exist"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.train.num_stepz=5"],
     "no config field 'num_stepz': Did you mean \"num_steps\""),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.trian.num_steps=5"],
     "no config field 'trian'"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.train.num_steps=abc"],
     "--config.train.num_steps=abc: invalid literal for int()"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.train.learning_rate=fast"],
     "could not convert string to float: 'fast'"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.train.learning_rate=-0.1"],
     "train.learning_rate=-0.1 must be positive"),
    (["train", "--config", "configs/transformer.py", "--workdir", "{tmp}/w", "--config.model.num_heads=3"],
     "model.d_model=128 is not divisible by model.num_heads=3"),
    (["train", "--config", "configs/transformer.py:size=huge", "--workdir", "{tmp}/w"],
     "size='huge' is not one of tiny, small, base"),
    (["train", "--config", "configs/rnn_luong.py:score=cosine", "--workdir", "{tmp}/w"],
     "model.score='cosine' is not one of"),
    (["train", "--config", "configs/rnn_luong.py:colour=red", "--workdir", "{tmp}/w"],
     "unknown preset option(s) ['colour']"),
    (["train", "--config", "configs/transformer.py:colour=red", "--workdir", "{tmp}/w"],
     "configs/transformer.py: unknown preset option(s) ['colour']; it takes size="),
    (["train", "--config", "configs/rnn_seq2seq.py:reverse", "--workdir", "{tmp}/w"],
     "configs/rnn_seq2seq.py: preset option 'reverse' has no value; it takes reverse="),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.decode.beam_size=0"],
     "decode.beam_size=0 must be at least 1"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.model.cell=rnn"],
     "model.cell='rnn' is not one of"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.model.dropout=1.5"],
     "model.dropout=1.5 must be a probability"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "stray"], "unexpected arguments: stray"),
    (["eval", "--workdir", "{tmp}/missing"], "workdir {tmp}/missing does not exist"),
    (["eval", "--workdir", "{tmp}"], "is not an attnjax workdir (no config.json)"),
    (["eval", "--workdir", "{trained}", "--split", "dev"], "--split=dev: value should be one of"),
    (["translate", "--workdir", "{trained}", "--beam", "0", "one"], "--beam=0: the beam size must be at least 1"),
    (["align", "--workdir", "{trained}"], "--src"),
    (["align", "--workdir", "{trained}", "--src", "  "], "--src is empty"),
    (["translate", "--workdir", "{trained}", "--sampling", "top:3", "one"], "--sampling=top:3: use topk:K"),
    (["translate", "--workdir", "{trained}", "--input", "{tmp}/none.txt", "--output", "{tmp}/o.txt"],
     "{tmp}/none.txt does not exist"),
    (["translate", "--workdir", "{trained}", "--input", "{tmp}/a.src"], "--input F --output O translate a file"),
    (["eval", "--workdir", "{trained}", "--src", "{tmp}/a.src"], "--src and --ref go together"),
    (["eval", "--workdir", "{trained}", "--src", "{tmp}/a.src", "--ref", "{tmp}/b.ref"],
     "{tmp}/b.ref has 1 lines but {tmp}/a.src has 2"),
    (["compare", "--workdir", "{trained}"], "compare takes two --workdir flags"),
    (["compare", "--workdir", "{trained}", "--workdir", "{tmp}/missing"], "workdir {tmp}/missing does not exist"),
    (["eval", "--workdir", "{trained}", "--alignment"], "numbers:fr has no gold word alignments"),
    (["eval", "--workdir", "{trained}", "--alignment", "--src", "{tmp}/a.src", "--ref", "{tmp}/a.src"],
     "--alignment with --src/--ref needs --gold"),
    (["eval", "--workdir", "{trained}", "--gold", "{tmp}/b.ref"], "--gold goes with --alignment"),
    (["eval", "--workdir", "{trained}", "--alignment", "--src", "{tmp}/a.src", "--ref", "{tmp}/a.src",
      "--gold", "{tmp}/b.ref"], "{tmp}/b.ref has 1 lines but {tmp}/a.src has 2"),
    (["eval", "--workdir", "{trained}", "--alignment", "--src", "{tmp}/a.src", "--ref", "{tmp}/a.src",
      "--gold", "{tmp}/bad.gold"], "not an alignment link '0=0'"),
    (["eval", "--workdir", "{trained}", "--alignment", "--src", "{tmp}/a.src", "--ref", "{tmp}/a.src",
      "--gold", "{tmp}/past.gold"], "{tmp}/past.gold: line 2: link 0-3 points past its sentence pair "
     "(1 source words, 1 target words)"),
    (["train", "--config", DEFAULT, "--workdir", "{tmp}/w", "--config.data.batch_size=6"],
     "data.batch_size=6 does not divide evenly over 4 devices; use a multiple of 4"),
    (["translate", "--workdir", "{trained}", "--input", "{tmp}/a.src", "--output", "{tmp}/o.txt",
      "--alignments", "{tmp}/a.jsonl"], "--alignments writes the attention of sentences given as arguments"),
    (["eval", "--workdir", "{trained}", "--step", "99"], "has no checkpoint of step 99; it has [3, 6]"),
    (["translate", "--workdir", "{trained}", "--sampling", "nucleus:1.5", "one"], "with 0 < P <= 1"),
    (["translate", "--workdir", "{trained}", "--temperature", "0.5", "one"], "--temperature applies to sampling"),
    (["translate", "--workdir", "{trained}", "--sampling", "topk:2", "--beam", "4", "one"], "drop --beam=4"),
    (["train", "--config", "{tmp}/syntax.py", "--workdir", "{tmp}/w"], "config file {tmp}/syntax.py, line 1: "),
    (["train", "--config", "{tmp}/empty.py", "--workdir", "{tmp}/w"], "config file {tmp}/empty.py defines no get_config()"),
    (["train", "--config", "{tmp}/raises.py:x", "--workdir", "{tmp}/w"],
     "config file {tmp}/raises.py: get_config() raised ZeroDivisionError: division by zero"),
]

BAD_CONFIG_FILES = {"syntax.py": "def get_config(:\n", "empty.py": "CONFIG = None\n",
                    "raises.py": "def get_config(arg):\n  return 1 / 0\n"}


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(a[:3]) + f" #{i}" for i, (a, _) in enumerate(CASES)])
def test_bad_input_gets_one_clear_line(args, message, trained, tmp_path, capsys):
  for name, text in BAD_CONFIG_FILES.items():
    (tmp_path / name).write_text(text)
  (tmp_path / "a.src").write_text("one\ntwo\n")
  (tmp_path / "b.ref").write_text("un\n")
  (tmp_path / "bad.gold").write_text("0-0\n0=0\n")
  (tmp_path / "past.gold").write_text("0-0\n0-0 0-3\n")
  fill = lambda s: s.replace("{tmp}", str(tmp_path)).replace("{trained}", str(trained))
  code, err = _run([fill(a) for a in args], capsys)
  assert code != 0
  assert fill(message) in err, err
  assert "Traceback" not in err
  assert not (tmp_path / "w").exists()       # nothing was created for a refused command


def test_empty_input_to_translate(trained, capsys, monkeypatch):
  code, err = _run(["translate", "--workdir", str(trained)], capsys, stdin="\n  \n", monkeypatch=monkeypatch)
  assert code == 2 and "nothing to translate" in err


def test_workdir_trained_with_another_model_is_refused(trained, tmp_path, capsys):
  work = tmp_path / "copy"
  shutil.copytree(trained, work)
  before = sorted(p.name for p in (work / "checkpoints").iterdir())
  code, err = _run(["train", "--config", DEFAULT, "--workdir", str(work)], capsys)
  assert code == 2 and "the workdir was trained with data." in err and "use a new --workdir" in err
  assert sorted(p.name for p in (work / "checkpoints").iterdir()) == before


def test_workdir_without_checkpoints(trained, tmp_path, capsys):
  work = tmp_path / "fresh"
  work.mkdir()
  shutil.copy(trained / "config.json", work / "config.json")
  shutil.copytree(trained / "tokenizer", work / "tokenizer")
  code, err = _run(["eval", "--workdir", str(work)], capsys)
  assert code == 1 and "has no checkpoints yet; train first" in err


def test_damaged_config_json_in_workdir(trained, tmp_path, capsys):
  work = tmp_path / "bad"
  shutil.copytree(trained, work)
  (work / "config.json").write_text("{ not json")
  code, err = _run(["translate", "--workdir", str(work), "one"], capsys)
  assert code == 2 and "config.json: not valid JSON" in err


@pytest.mark.slow
def test_align_on_a_model_without_attention(data_dir, tmp_path, capsys):
  from attnjax.train.loop import train_and_evaluate
  from tests.helpers import tiny_config
  config = tiny_config(data_dir, decoder="seq2seq", steps=1)
  config.train.eval_samples = 0
  train_and_evaluate(config, tmp_path / "s2s", progress=False)
  code, err = _run(["align", "--workdir", str(tmp_path / "s2s"), "--src", "one", "--out",
                    str(tmp_path / "a.png")], capsys)
  assert code == 2 and "has no attention (model.decoder='seq2seq')" in err


def test_overlong_sentence_is_truncated_with_a_warning(trained, capsys, caplog):
  code = cli.main(["attnjax", "translate", "--workdir", str(trained), "--quiet", " ".join(["seven"] * 60)])
  assert code == 0
  assert any("truncated to the model's 16" in r.getMessage() for r in caplog.records)


def test_help_for_every_command(capsys):
  for command in ("prepare", "train", "eval", "translate", "align", "average", "compare"):
    assert cli.main(["attnjax", command, "--help"]) == 0
    assert "--" in capsys.readouterr().out
  assert cli.main(["attnjax", "--help"]) == 0
  assert "attnjax train" in capsys.readouterr().out


def _files(tmp_path, train_lines):
  files = tmp_path / "files"
  files.mkdir()
  for prefix, lines in (("train", train_lines), ("valid", ["a b"]), ("test", ["a b"])):
    (files / f"{prefix}.src").write_text("".join(l + "\n" for l in lines))
    (files / f"{prefix}.tgt").write_text("".join(l + "\n" for l in lines))
  return ["--config", DEFAULT, "--workdir", str(tmp_path / "w"), "--config.data.name=files",
          f"--config.data.files_dir={files}", f"--config.data.data_dir={tmp_path / 'data'}"]


def test_a_training_split_with_no_usable_pair(tmp_path, capsys):
  code, err = _run(["train"] + _files(tmp_path, ["", "  "]), capsys)
  assert code == 2 and "Traceback" not in err
  assert f"{tmp_path / 'files' / 'train'}.src/.tgt holds no usable sentence pair (2 empty" in err


def test_a_training_split_that_max_len_drops_entirely(tmp_path, capsys):
  args = _files(tmp_path, ["a b c d e f g h"] * 4) + ["--config.data.max_src_len=3", "--config.data.vocab_size=16"]
  code, err = _run(["train"] + args, capsys)
  assert code == 2 and "Traceback" not in err
  assert "no training pairs fit max_src_len=3" in err


def test_a_check_inside_the_training_loop(data_dir, tmp_path, capsys):
  args = ["--config", DEFAULT, "--workdir", str(tmp_path / "w"), "--config.data.name=numbers:fr",
          f"--config.data.data_dir={data_dir}", "--config.data.vocab_size=64",
          "--config.data.tokens_per_batch=4"]
  code, err = _run(["train"] + args, capsys)
  assert code == 2 and "Traceback" not in err
  assert "tokens_per_batch=4 holds no" in err


def test_a_workdir_whose_model_no_longer_matches_its_checkpoints(trained, tmp_path, capsys):
  import json
  work = tmp_path / "edited"
  shutil.copytree(trained, work)
  config = json.loads((work / "config.json").read_text())
  config["model"]["hidden_dim"] *= 2
  (work / "config.json").write_text(json.dumps(config))
  code, err = _run(["translate", "--workdir", str(work), "one"], capsys)
  assert code == 1 and "Traceback" not in err
  assert f"no checkpoint in {work} can be read as the model that its config.json and tokenizer/" in err


# ---------------------------------------------------------------- paths, checked before the work


@pytest.fixture
def unwritable(tmp_path):
  """A folder that exists but takes no new file (root writes anywhere but a read-only mount)."""
  if os.geteuid() == 0:
    folder = pathlib.Path("/sys/kernel")
  else:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
  try:
    (folder / ".probe").write_text("")
  except OSError:
    return folder
  pytest.fail(f"no unwritable folder to test with: {folder} takes new files")


# Every flag a subcommand writes to: (arguments, the flag's value as a template).
OUTPUT_FLAGS = [
    (["train", "--config", DEFAULT, "--config.data.name=numbers:fr", "--workdir"], "{out}"),
    (["translate", "--workdir", "{trained}", "--input", "{tmp}/a.src", "--output"], "{out}/o.txt"),
    (["translate", "--workdir", "{trained}", "one", "--alignments"], "{out}/a.jsonl"),
    (["align", "--workdir", "{trained}", "--src", "one", "--out"], "{out}/a.png"),
    (["average", "--workdir", "{trained}", "--last", "1", "--out"], "{out}/avg"),
]
# Every flag a subcommand reads from.
INPUT_FLAGS = [
    (["train", "--workdir", "{tmp}/w", "--config"], "{out}/c.py"),
    (["translate", "--workdir", "{trained}", "--output", "{tmp}/o.txt", "--input"], "{out}/in.txt"),
    (["eval", "--workdir", "{trained}", "--ref", "{tmp}/a.src", "--src"], "{out}/a.src"),
    (["eval", "--workdir", "{trained}", "--src", "{tmp}/a.src", "--ref"], "{out}/a.ref"),
    (["eval", "--workdir", "{trained}", "--alignment", "--src", "{tmp}/a.src", "--ref", "{tmp}/a.src",
      "--gold"], "{out}/g.txt"),
    (["eval", "--workdir"], "{out}/run"),
]


def _fill(args, tmp, trained, out):
  return [a.replace("{out}", str(out)).replace("{tmp}", str(tmp)).replace("{trained}", str(trained))
          for a in args]


def _refused(args, capsys):
  code, err = _run(args, capsys)
  lines = [l for l in err.splitlines() if l.strip()]
  assert code != 0 and "Traceback" not in err, err
  assert len(lines) == 1 and "error:" in lines[0], err
  return lines[0]


@pytest.mark.parametrize("args,value", OUTPUT_FLAGS, ids=[a[0] + " --" + a[-1].lstrip("-") for a, _ in OUTPUT_FLAGS])
def test_an_output_in_an_unwritable_folder_or_under_a_file_is_refused_before_the_work(
    args, value, trained, tmp_path, capsys, unwritable):
  (tmp_path / "a.src").write_text("one\ntwo\n")
  blocker = tmp_path / "a-file"
  blocker.write_text("kept\n")
  for out, says in ((unwritable, "cannot"), (blocker, "is a file")):
    message = _refused(_fill(args + [value], tmp_path, trained, out), capsys)
    assert says in message and str(out) in message, message
  assert blocker.read_text() == "kept\n"          # nothing lost
  assert not (tmp_path / "o.txt").exists()


def test_an_output_whose_folder_is_missing_gets_it(trained, tmp_path, capsys):
  out = tmp_path / "new" / "deeper"
  assert _run(["translate", "--workdir", str(trained), "one", "--alignments", str(out / "a.jsonl")], capsys)[0] == 0
  assert (out / "a.jsonl").read_text().count("\n") == 1
  assert _run(["align", "--workdir", str(trained), "--src", "one", "--out", str(out / "b" / "a.png")], capsys)[0] == 0
  assert (out / "b" / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_an_image_format_nothing_writes_or_a_folder_as_the_file(trained, tmp_path, capsys):
  message = _refused(["align", "--workdir", str(trained), "--src", "one", "--out", str(tmp_path / "a.xyz")], capsys)
  assert "cannot write '.xyz' files; use one of" in message and ".png" in message
  message = _refused(["translate", "--workdir", str(trained), "one", "--alignments", str(tmp_path)], capsys)
  assert f"--alignments={tmp_path} is a folder; give a file name" in message
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,value", INPUT_FLAGS, ids=[a[0] + " --" + a[-1].lstrip("-") for a, _ in INPUT_FLAGS])
def test_an_input_in_a_missing_folder_or_of_the_wrong_kind_is_one_line(args, value, trained, tmp_path, capsys):
  (tmp_path / "a.src").write_text("one\ntwo\n")
  _refused(_fill(args + [value], tmp_path, trained, tmp_path / "missing"), capsys)
  folder = tmp_path / "folder"
  for name in ("c.py", "in.txt", "a.src", "a.ref", "g.txt", "run"):   # each input a folder, or
    (folder / name).mkdir(parents=True)                               # (--workdir) a folder of nothing
  _refused(_fill(args + [value], tmp_path, trained, folder), capsys)
  assert not (tmp_path / "o.txt").exists() and not (tmp_path / "w").exists()
