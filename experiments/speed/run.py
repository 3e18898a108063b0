r"""attnjax against its PyTorch peer, side by side on this machine; writes results.md.

    python experiments/speed/run.py                 # the comparisons below, 3 pairs each: about 15 min
    python experiments/speed/run.py --only transformer-remat --name remat   # remat.jsonl, remat.md
    python experiments/speed/run.py --pairs 5 --only transformer-train rnn-attention-train
    python experiments/speed/run.py --peer-huge-pages --name peer_huge_pages   # both with huge pages
    python experiments/speed/run.py --only transformer-huge-pages rnn-seq2seq-huge-pages --name huge_pages

Each comparison runs its two commands in turn, A B A B ..., so that both see the same
machine; only the ratio of the two medians is quoted. A is `attnjax bench`, B is the
PyTorch reference (`torch_reference.py` beside PROTOCOL.md) or a second attnjax run. The
peer is expected, not installed, in ~/.venvs/torch-peer:

    python3 -m venv ~/.venvs/torch-peer && ~/.venvs/torch-peer/bin/pip install torch==2.13.0 numpy

The `attnjax` command runs with transparent huge pages where it can (attnjax/speed/hugepages.py);
the PyTorch peer, as its users run it, without. --peer-huge-pages gives the peer the same
setting (GLIBC_TUNABLES=glibc.malloc.hugetlb=1), --no-huge-pages takes it from attnjax.

Every run's JSON line goes to runs.jsonl beside this file as it finishes; report.py turns it
into results.md (with --name X: X.jsonl and X.md).
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import NamedTuple

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import report  # noqa: E402

# The PyTorch decoder re-runs the whole prefix at every step: about 8 s a step at 32 tokens
# and 30 s at 64 on 2 cores, so its decodes get fewer steps to keep the run short.
SHORT = ["--warmup", "1", "--steps", "3"]
SHORTER = ["--warmup", "1", "--steps", "2"]


class Comparison(NamedTuple):
  key: str
  title: str
  a: list            # attnjax bench flags
  b: list            # the peer's flags (torch_reference.py), or attnjax's if b_is_jax
  target: str        # what report.py checks: "speedup>=X" (B time / A time), "cost<=X" (A / B); no bound: none
  b_is_jax: bool = False
  default: bool = True  # run without --only
  b_env: dict | None = None  # environment variables set for B only


COMPARISONS = [
    Comparison("transformer-train", "Transformer, train",
               ["--model", "transformer"], ["--model", "transformer"], "speedup>=1.3"),
    Comparison("rnn-attention-train", "RNN with attention (Luong general), train",
               ["--model", "rnn_attention"], ["--model", "rnn_attention"], "speedup>=2"),
    Comparison("rnn-seq2seq-train", "RNN without attention, train",
               ["--model", "rnn_seq2seq"], ["--model", "rnn_seq2seq"], "speedup>=1"),
    Comparison("transformer-decode-32", "Transformer, greedy decode, 32 tokens",
               ["--model", "transformer", "--task", "decode"],
               ["--model", "transformer", "--task", "decode"] + SHORT, "speedup>=5"),
    Comparison("transformer-decode-64", "Transformer, greedy decode, 64 tokens",
               ["--model", "transformer", "--task", "decode", "--tgt-len", "64"],
               ["--model", "transformer", "--task", "decode", "--tgt-len", "64"] + SHORTER, "speedup>=5"),
    Comparison("transformer-beam", "Transformer, beam 4 (A) vs greedy (B), 32 tokens",
               ["--model", "transformer", "--task", "decode", "--beam", "4"],
               ["--model", "transformer", "--task", "decode"], "cost<=3", b_is_jax=True),
    Comparison("transformer-remat", "Transformer 512+512 tokens, batch 8, --remat (A) vs none (B)",
               ["--model", "transformer", "--src-len", "512", "--tgt-len", "512", "--batch", "8",
                "--remat"] + SHORT,
               ["--model", "transformer", "--src-len", "512", "--tgt-len", "512", "--batch", "8"]
               + SHORT, "cost", b_is_jax=True, default=False),
    Comparison("transformer-huge-pages", "Transformer, train, huge pages (A) vs none (B)",
               ["--model", "transformer"], ["--model", "transformer"], "cost", b_is_jax=True,
               default=False, b_env={"ATTNJAX_HUGEPAGES": "0"}),
    Comparison("rnn-seq2seq-huge-pages", "RNN without attention, train, huge pages (A) vs none (B)",
               ["--model", "rnn_seq2seq"], ["--model", "rnn_seq2seq"], "cost", b_is_jax=True,
               default=False, b_env={"ATTNJAX_HUGEPAGES": "0"}),
]


def jax_command(flags):
  return [sys.executable, "-m", "attnjax", "bench"] + flags


def run_one(command, timeout, env=None):
  env = dict(env or os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
  lines = done.stdout.strip().splitlines()
  if done.returncode or not lines:
    raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
  return json.loads(lines[-1])


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--pairs", type=int, default=3, help="A B rounds per comparison (at least 3 to quote)")
  p.add_argument("--only", nargs="+", choices=[c.key for c in COMPARISONS], help="these comparisons only")
  p.add_argument("--torch-python", default=os.path.expanduser("~/.venvs/torch-peer/bin/python"))
  p.add_argument("--torch-reference", default=str(ROOT.parent / "shared" / "peers" / "torch_reference.py"))
  p.add_argument("--timeout", type=int, default=600, help="seconds one run may take")
  p.add_argument("--peer-huge-pages", action="store_true",
                 help="run the PyTorch peer with glibc's transparent-huge-page tunable too")
  p.add_argument("--no-huge-pages", action="store_true",
                 help="run attnjax without transparent huge pages (ATTNJAX_HUGEPAGES=0)")
  p.add_argument("--name", default="results", help="write NAME.md (and runs.jsonl, or NAME.jsonl)")
  args = p.parse_args(argv)
  chosen = [c for c in COMPARISONS if (c.key in args.only if args.only else c.default)]
  runs_path = HERE / ("runs.jsonl" if args.name == "results" else f"{args.name}.jsonl")
  if any(not c.b_is_jax for c in chosen):
    for path, what in ((args.torch_python, "the PyTorch peer's python"), (args.torch_reference, "torch_reference.py")):
      if not os.path.exists(path):
        raise SystemExit(f"{what} is not at {path}; see this script's docstring to set it up, "
                         "or pass --torch-python/--torch-reference")

  sys.path.insert(0, str(ROOT))
  from attnjax.speed import hugepages
  jax_env = dict(os.environ, ATTNJAX_HUGEPAGES="0" if args.no_huge_pages else "1")
  peer_env = hugepages.environment() if args.peer_huge_pages else os.environ
  started = time.time()
  runs_path.write_text(json.dumps({"machine": report.machine()}) + "\n")
  for comparison in chosen:
    b_command = (jax_command(comparison.b) if comparison.b_is_jax
                 else [args.torch_python, args.torch_reference] + comparison.b)
    for pair in range(args.pairs):
      for side, command in (("A", jax_command(comparison.a)), ("B", b_command)):
        jax_side = side == "A" or comparison.b_is_jax
        env = jax_env if jax_side else peer_env
        if side == "B" and comparison.b_env:
          env = dict(env, **comparison.b_env)
        result = run_one(command, args.timeout, env)
        if not jax_side:
          result["huge_pages"] = hugepages.active(peer_env)
        record = {"comparison": comparison.key, "title": comparison.title,
                  "target": comparison.target, "pair": pair, "side": side,
                  "command": " ".join(command[1:] if jax_side
                                      else ["torch_reference.py"] + command[2:]),
                  "result": result}
        with open(runs_path, "a") as f:
          f.write(json.dumps(record) + "\n")
        print(f"{comparison.key} pair {pair} {side}: {result['step_s_median']:.4f} s/step", flush=True)
  end = dict(report.load(), runtime_s=time.time() - started,
             date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
  with open(runs_path, "a") as f:
    f.write(json.dumps({"end": end}) + "\n")
  path = report.write(runs_path, HERE / f"{args.name}.md")
  print(f"wrote {runs_path} and {path} in {end['runtime_s'] / 60:.1f} min")
  return 0


if __name__ == "__main__":
  sys.exit(main())
