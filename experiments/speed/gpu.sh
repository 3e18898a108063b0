#!/usr/bin/env bash
# attnjax bench at accelerator sizes in bfloat16, every family, then one table with MFU
# against the chip's dense bf16 peak (H100/H200: 989 TFLOP/s). Five runs, most of their time
# compilation: under 3 minutes on an H100 (161 s on 2026-11-27; the REMAT pair adds about
# 160 s). REMAT=1 adds Transformer-base at 1024+1024 tokens with
# and without --remat.
#
#   experiments/speed/gpu.sh                 # from anywhere; needs jax[cuda], flax, optax, ml_collections
#   REMAT=1 experiments/speed/gpu.sh         # also Transformer-base at 1024+1024 tokens, --remat or not
#   SMOKE=1 experiments/speed/gpu.sh         # tiny sizes, one step: checks this script on a CPU
#   PYTHON=/path/to/python experiments/speed/gpu.sh
#
# Nothing is installed: the repo runs from its checkout (PYTHONPATH=.). Every run's JSON line
# is kept in experiments/speed/gpu-runs.jsonl (SMOKE=1: in a temporary file).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
LOG=experiments/speed/gpu-runs.jsonl

if [ "${SMOKE:-0}" = 1 ]; then
  TRANSFORMER="--d-model 32 --heads 2 --ff 64 --layers 1 --vocab 64 --batch 4 --src-len 8 --tgt-len 8"
  LONG="--d-model 32 --heads 2 --ff 64 --layers 1 --vocab 64 --batch 2 --src-len 16 --tgt-len 16"
  RNN="--emb 16 --hidden 32 --vocab 64 --batch 4 --src-len 8 --tgt-len 8"
  STEPS="--warmup 1 --steps 1"
  LOG=$(mktemp)  # keep the accelerator's record
else
  # Transformer-base (Vaswani et al. 2017): 256 x 64 target tokens = 16k tokens a step.
  TRANSFORMER="--d-model 512 --heads 8 --ff 2048 --layers 6 --vocab 32000 --batch 256 --src-len 64 --tgt-len 64"
  # Long sequences, same model and tokens a step, with and without rematerialisation.
  LONG="--d-model 512 --heads 8 --ff 2048 --layers 6 --vocab 32000 --batch 16 --src-len 1024 --tgt-len 1024"
  # Luong et al. 2015 sizes: 1000-wide LSTMs (here 1024), 32k vocabulary.
  RNN="--emb 512 --hidden 1024 --vocab 32000 --batch 256 --src-len 64 --tgt-len 64"
  STEPS=""
fi

bench() {
  echo "+ attnjax bench $*" >&2
  "$PY" -m attnjax bench --dtype bfloat16 $STEPS "$@" | tee -a "$LOG"
}

: > "$LOG"
start=$SECONDS
bench --model transformer --task train $TRANSFORMER
bench --model transformer --task decode $TRANSFORMER
bench --model transformer --task decode --beam 4 $TRANSFORMER
bench --model rnn_attention --task train $RNN
bench --model rnn_seq2seq --task train $RNN
if [ "${REMAT:-0}" = 1 ]; then
  bench --model transformer --task train $LONG
  bench --model transformer --task train --remat $LONG
fi

"$PY" - "$LOG" "$((SECONDS - start))" <<'EOF'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
print(f"\n{runs[0]['device']}; jax {runs[0]['version']}; peak {runs[0]['peak_flops'] / 1e12:.3g} TFLOP/s "
      f"({runs[0]['peak_flops_source']}); {sys.argv[2]} s in all\n")
print(f"{'model':14} {'task':6} {'beam':>4} {'remat':>5} {'batch':>5} {'src':>5} {'tgt':>5} "
      f"{'ms/step':>9} {'tgt tok/s':>10} {'TFLOP/s':>8} {'MFU':>6} {'memory GiB':>10}")
for r in runs:
  memory = r["device_peak_memory_bytes"] or r["peak_memory_bytes"] or 0
  print(f"{r['model']:14} {r['task']:6} {r['beam'] or '':>4} {r['remat'] or '':>5} {r['batch']:>5} "
        f"{r['src_len']:>5} {r['tgt_len']:>5} {r['step_s_median'] * 1e3:9.2f} "
        f"{r['tgt_tokens_per_s']:10,.0f} {r['model_flops_per_step'] / r['step_s_median'] / 1e12:8.1f} "
        f"{r['mfu']:6.1%} {memory / 2 ** 30:10.2f}")
EOF
