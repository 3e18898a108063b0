"""Every published figure traceable: the committed reports are rebuilt from the runs kept beside
them, byte for byte, and every number in README.md's results tables is found in a results file
that the table's paragraph cites."""

import importlib
import pathlib
import re
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

# (experiment, preset, report folder): each report's markdown and the kept runs it reads
REPORTS = [
    ("parallelism", "cpu", "experiments/parallelism"),
    ("parallelism", "full", "experiments/parallelism"),
    ("parallelism", "full", "experiments/gpu/results/earlier"),
    ("scores", "cpu", "experiments/scores"),
    ("bottleneck", "cpu", "experiments/bottleneck"),
    ("interventions", "cpu", "experiments/interventions"),
    ("quality", "cpu", "experiments/quality"),
    ("alignments", "cpu", "experiments/alignments"),
]


@pytest.mark.parametrize("experiment,preset,folder", REPORTS, ids=[f"{e}-{p}-{f.split('/')[-1]}" for e, p, f in REPORTS])
def test_a_committed_report_is_rebuilt_from_its_kept_runs(tmp_path, experiment, preset, folder):
  kept = REPO / folder / f"runs_{preset}"
  assert kept.is_dir(), f"{folder}: no kept runs for its {preset} report"
  shutil.copytree(kept, tmp_path / kept.name)
  report = importlib.import_module(f"experiments.{experiment}.report")
  assert report.main(["--preset", preset, "--report_dir", str(tmp_path)]) == 0
  name = f"results_{preset}.md"
  assert (tmp_path / name).read_text() == (REPO / folder / name).read_text(), (
      f"{folder}/{name} is not what its kept runs give: rerun `python -m experiments.{experiment}.report "
      f"--preset {preset}` and commit it")


def _tables(markdown: str):
  """(the text before each table back to the previous table or heading, the table's data rows)."""
  lines = markdown.splitlines()
  tables, start = [], 0
  i = 0
  while i < len(lines):
    if lines[i].startswith("#"):
      start = i
    if lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|[-:| ]+\|", lines[i + 1]):
      end = i
      while end < len(lines) and lines[end].startswith("|"):
        end += 1
      tables.append(("\n".join(lines[start:i]), lines[i + 2:end]))
      start = i = end
      continue
    i += 1
  return tables


NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[str]:
  return {n.replace(",", "") for n in NUMBER.findall(text)}


def test_every_number_in_the_readme_results_tables_is_in_a_file_it_cites():
  readme = (REPO / "README.md").read_text()
  results = readme[readme.index("## Results"):readme.index("## Layout")]
  speed = readme[readme.index("## Speed"):readme.index("## Failure behaviour")]
  checked = 0
  for before, rows in _tables(results) + _tables(speed):
    cited = re.findall(r"`((?:experiments)/[^`\s]+\.md)`", before)
    assert cited, f"README table {rows[0][:60]!r}: the paragraph above it cites no results file"
    found = set().union(*(_numbers((REPO / path).read_text()) for path in cited))
    for row in rows:
      cells = row.strip("|").split("|")[1:]  # the first cell names the row
      missing = [n for cell in cells for n in NUMBER.findall(cell) if n.replace(",", "") not in found]
      assert not missing, f"README row {row[:50]!r}: {missing} not in {', '.join(cited)}"
      checked += 1
  assert checked >= 20


def test_the_demo_files_come_from_one_make_demo_and_the_readme_quotes_it():
  """`experiments/demo/run.sh` keeps the log, scores, AER report and heatmap of one `make demo`:
  the scores files agree with what the log printed, the log names its machine and commit, and
  the README's quoted lines and wall time are the log's."""
  import json
  demo = REPO / "experiments" / "demo"
  log = (demo / "make_demo.log").read_text()
  assert re.search(r"^# machine: \S.*, \d+ cores", log, re.M), "make_demo.log names no machine"
  assert re.search(r"^# make demo on a fresh clone of [0-9a-f]{7,}", log, re.M)
  scores = json.loads((demo / "eval_test.json").read_text())
  assert f"BLEU   {scores['bleu']:.2f}" in log and f"chrF   {scores['chrf']:.2f}" in log
  for row in scores["by_length"]:
    assert re.search(rf"{row['min_len']}-{row['max_len']}\s+{row['sentences']}\s+{row['bleu']:.2f}", log)
  aer = json.loads((demo / "alignment_test.json").read_text())
  assert re.search(rf"argmax per target word\s+{aer['aer']['argmax']:.3f}", log)
  assert re.search(rf"monotone diagonal \(baseline\)\s+{aer['diagonal']:.3f}", log)
  assert (demo / "alignment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  readme = (REPO / "README.md").read_text()
  intro = readme[:readme.index("## Results")]
  quoted = intro[intro.index("experiments/demo/make_demo.log"):]
  quoted = quoted[quoted.index("```") + 3:]
  quoted = quoted[:quoted.index("```")]
  for line in quoted.strip().splitlines():
    assert line in log, f"README quotes {line!r}, which make_demo.log does not print"
  (minutes, seconds), = re.findall(r"^# make demo: (\d+) min (\d+) s", log, re.M)
  assert f"takes {minutes} min {seconds} s" in intro


MACHINE = re.compile(r"AMD EPYC|Intel\(R\)|Xeon|NVIDIA|H100|H200|TPU v\d")


def test_every_results_file_names_its_machine():
  """A figure is read against the machine that made it (our 2-core machines differ 2-3x in
  speed): every report and speed table names its CPU model or device, and counts the runs kept
  without one rather than leaving them out."""
  files = sorted({*REPO.glob("experiments/**/results_*.md"), *REPO.glob("experiments/speed/*.md")}
                 - {REPO / "experiments/speed/README.md"})
  assert len(files) >= 15
  for path in files:
    text = path.read_text()
    where = path.relative_to(REPO)
    assert MACHINE.search(text), f"{where} does not name the machine its figures come from"
    for unnamed in re.finditer(r"not recorded(.{0,20})", text):
      assert re.match(r" \(\d+ runs?", unnamed.group(1)), f"{where}: say how many runs lack a machine"
