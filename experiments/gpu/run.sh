#!/usr/bin/env bash
# The accelerator's one script: what a lent GPU should measure, most important first, each part
# under its own time limit and all of them under LIMIT_TOTAL, every result written as it arrives,
# so a run cut short keeps what it reached and says where it stopped, and a second run into the
# same $OUT resumes: the sweep skips the rows it holds, the ablation the levers it holds, and
# bench, decode and Flax rows named in $OUT/done.txt (each finished row's name is added there) are
# skipped, new ones appended. One run fits a 10-minute allowance, compilation included (570 s in
# all by default); run it again until it says nothing is left.
#
#   experiments/gpu/run.sh                   # from anywhere; needs jax[cuda12] (or cuda13), flax, optax, ml_collections
#   SMOKE=1 experiments/gpu/run.sh           # tiny sizes on a CPU, into a temporary folder (make check does)
#   OUT=/tmp/gpu PYTHON=/path/to/python experiments/gpu/run.sh
#   PARTS='bench flax' LIMIT_BENCH=60 LIMIT_FLAX=120 experiments/gpu/run.sh   # some parts, in this order, other limits (s)
#
# The results of each device run are committed under experiments/gpu/results/ (the default
# $OUT; its README names the device and what is still to measure).
#
# The parts, in the default order (PARTS), with their limits in seconds (each cut to what is left
# of LIMIT_TOTAL=570; a part with under MIN_LEFT=15 s left is not started, and said):
#
# 1. parallelism, LIMIT_PARALLELISM=300: Chapter 3 at scale, the parallelism experiment's `full`
#    preset (Transformer-base against RNNs of its size, bfloat16, 65,536 target tokens a step,
#    n = 16 ... 1,024, the RNN with attention also with its encoder through cuDNN). The experiment
#    measures its training-step rows (with each length's forward pass) first and its latency
#    programs after; rows measured in $OUT/sweep, resumed from the experiment's kept rows
#    (experiments/parallelism/runs_full/), which a finished run replaces, with the report and
#    plots beside them ($OUT/parallelism under SMOKE). Compilation is most of its time (37-40 s a
#    length for the Transformer's programs): one run reaches a few lengths, the next goes on.
# 2. ablation, LIMIT_ABLATION=240: the MFU levers one at a time against Transformer-base's bench
#    step, side by side (`experiments/gpu/ablation.py`: the chunked loss, the fused bias + dropout
#    + residual, XLA's command buffers off and extended, dropout's key generators, Triton's GEMM
#    fusions off), one JSON line per lever into $OUT/ablation.jsonl. LEVERS names some.
# 3. bench, LIMIT_BENCH=90 a row: `attnjax bench` in bfloat16 at 32k target tokens a step:
#    Transformer-base and -big with the fused attention (attention dropout 0), MFU against the
#    chip's dense bf16 peak, base also with its output layer and loss over 8,192 tokens at a time
#    (--loss-chunk); the RNNs at Luong et al.'s sizes (1,024-wide LSTMs, 32k vocabulary), and
#    minGRU with attention at the same sizes, its time walked by the associative scan and by
#    `lax.scan`. One JSON line each, $OUT/bench.jsonl.
# 4. cudnn (bench's limit a row): the attentive RNN at those sizes in float32, its encoder as a
#    scan and through cuDNN (the encoder target, like for like), into the same file.
# 5. flax, LIMIT_FLAX=180: the Flax WMT example's Transformer at Transformer-base's shapes, timed
#    the same way (`experiments/gpu/flax_wmt.py`), when its source is in $FLAX_WMT
#    (third_party/flax_wmt, never committed: copy google/flax's examples/wmt there, and carry the
#    folder to the device).
# 6. decode (bench's limit a row): greedy and beam-4 decoding of Transformer-base, into bench.jsonl.
# 7. profile (bench's limit each; not in the default PARTS, name it): where Transformer-base's
#    training step spends its time (`experiments/speed/profile.py`: kernel time by part of the
#    model, idle time, the longest kernels), $OUT/profile.txt, and at n = 16 (2,048 x 16 tokens)
#    $OUT/profile-short.txt, where the sweep found it 2.5x slower per token. Rewritten each time.
#
# Nothing is installed: the repo runs from its checkout (PYTHONPATH=.). A part that fails or runs
# out of time is said in one line and the next part runs; the last line names what is unfinished;
# the exit status is that of the worst (0 only when everything asked for is done).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
if [ "${SMOKE:-0}" = 1 ]; then  # never into the committed results
  OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/attnjax-gpu-smoke.XXXXXX")}
else
  OUT=${OUT:-experiments/gpu/results}
fi
mkdir -p "$OUT"

if [ "${SMOKE:-0}" = 1 ]; then
  PRESET=smoke
  BASE="--d-model 32 --heads 2 --ff 64 --layers 1 --vocab 64 --batch 4 --src-len 8 --tgt-len 8"
  BIG="--d-model 64 --heads 4 --ff 128 --layers 1 --vocab 64 --batch 4 --src-len 8 --tgt-len 8"
  RNN="--emb 16 --hidden 32 --vocab 64 --batch 4 --src-len 8 --tgt-len 8"
  DECODE="$BASE"
  SHORT="--d-model 32 --heads 2 --ff 64 --layers 1 --vocab 64 --batch 16 --src-len 2 --tgt-len 2"
  STEPS="--warmup 1 --steps 1"
  CHUNK=8
  ABLATION="--rounds 2 --steps-per-round 1"
  LEVERS=${LEVERS:-loss-chunk,command-buffers-off}  # one of each kind: in the process, in a second one
  LIMIT_PARALLELISM=${LIMIT_PARALLELISM:-600} LIMIT_ABLATION=${LIMIT_ABLATION:-600}
  LIMIT_BENCH=${LIMIT_BENCH:-120} LIMIT_FLAX=${LIMIT_FLAX:-120}
  LIMIT_TOTAL=${LIMIT_TOTAL:-3600} MIN_LEFT=${MIN_LEFT:-1}
else
  PRESET=full
  # 512 x 64 = 32,768 target tokens a step (Vaswani et al. 2017 trained on about 25k).
  BASE="--d-model 512 --heads 8 --ff 2048 --layers 6 --vocab 32000 --batch 512 --src-len 64 --tgt-len 64"
  BIG="--d-model 1024 --heads 16 --ff 4096 --layers 6 --vocab 32000 --batch 512 --src-len 64 --tgt-len 64"
  RNN="--emb 1024 --hidden 1024 --vocab 32000 --batch 512 --src-len 64 --tgt-len 64"
  DECODE="--d-model 512 --heads 8 --ff 2048 --layers 6 --vocab 32000 --batch 64 --src-len 64 --tgt-len 64"
  SHORT="--d-model 512 --heads 8 --ff 2048 --layers 6 --vocab 32000 --batch 2048 --src-len 16 --tgt-len 16"
  STEPS="--warmup 3 --steps 10"
  CHUNK=8192  # of the 32,768 target tokens
  # 10 rounds of 3 steps each side: about 3 s a lever on an H200, beside ~25 s of compilation
  ABLATION="--rounds 10 --steps-per-round 3"
  LEVERS=${LEVERS:-}
  # The Flax example stopped at 70-75 s twice on an H200 with its step not yet compiled (ours
  # compiles in 25 s); it says each stage it reaches on stderr.
  LIMIT_PARALLELISM=${LIMIT_PARALLELISM:-300} LIMIT_ABLATION=${LIMIT_ABLATION:-240}
  LIMIT_BENCH=${LIMIT_BENCH:-90} LIMIT_FLAX=${LIMIT_FLAX:-180}
  LIMIT_TOTAL=${LIMIT_TOTAL:-570} MIN_LEFT=${MIN_LEFT:-15}
fi

status=0
unfinished=""
part() {  # part LIMIT_S NAME COMMAND...: run it under its limit cut to what is left, say how it ended
  local limit=$1 name=$2
  shift 2
  local left=$((LIMIT_TOTAL - (SECONDS - start)))
  if [ "$left" -lt "$MIN_LEFT" ]; then
    echo "[$name] not reached: ${left} s left of LIMIT_TOTAL=$LIMIT_TOTAL s" >&2
    status=1 unfinished="$unfinished $name"
    return 1
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo "+ [$name] $*" >&2
  timeout --kill-after=10 "$limit" "$@"
  local code=$?
  if [ $code -eq 124 ] || [ $code -eq 137 ]; then
    echo "[$name] stopped at its limit of $limit s; what it wrote is kept" >&2
  elif [ $code -ne 0 ]; then
    echo "[$name] failed (exit $code)" >&2
  fi
  [ $code -eq 0 ] || status=1 unfinished="$unfinished $name"
  return $code
}
row() {  # row NAME LIMIT_S COMMAND...: a part whose finished run is named in done.txt, and then skipped
  local name=$1
  shift
  if grep -sqxF "$name" "$OUT/done.txt"; then
    echo "[$name] measured by an earlier run (its name is in $OUT/done.txt): skipped" >&2
    return 0
  fi
  part "$1" "$name" "${@:2}" && echo "$name" >> "$OUT/done.txt"
}
profile() {  # profile NAME FLAGS...: where Transformer-base's training step spends its time, into NAME.txt
  local name=$1
  shift
  part "$LIMIT_BENCH" "$name" bash -c '"$0" experiments/speed/profile.py --model transformer --task train --dtype bfloat16 --attention-dropout 0 --top 30 "$@" > "'"$OUT/$name"'.txt"' "$PY" $STEPS "$@"
}
bench() {  # bench NAME FLAGS...: one JSON line into bench.jsonl (bfloat16 unless FLAGS say)
  local name=$1
  shift
  row "$name" "$LIMIT_BENCH" bash -c '"$0" -m attnjax bench --dtype bfloat16 "$@" >> "'"$OUT"'/bench.jsonl"' "$PY" $STEPS "$@"
}

PARTS=${PARTS-parallelism ablation bench cudnn flax decode}   # run in the order named
if [ -z "${PARTS// /}" ]; then
  echo "PARTS is empty: name one or more of parallelism ablation bench cudnn flax decode profile" >&2
  exit 2
fi
for p in $PARTS; do  # every name checked before anything runs
  case $p in parallelism|ablation|bench|cudnn|flax|decode|profile) ;;
    *) echo "unknown part '$p' in PARTS='$PARTS' (parts: parallelism ablation bench cudnn flax decode profile)" >&2; exit 2 ;;
  esac
done
start=$SECONDS
touch "$OUT/bench.jsonl" "$OUT/done.txt"
for p in $PARTS; do
  # shellcheck disable=SC2086  # the size variables hold several flags
  case $p in
    parallelism)
      REPORT=$OUT/parallelism
      if [ "${SMOKE:-0}" != 1 ]; then  # the experiment's own folder, resuming its kept rows
        REPORT=experiments/parallelism
        if [ ! -e "$OUT/sweep/$PRESET" ] && [ -d "$REPORT/runs_$PRESET" ]; then
          mkdir -p "$OUT/sweep/$PRESET" && cp "$REPORT/runs_$PRESET"/*.json "$OUT/sweep/$PRESET/"
        fi
      fi
      part "$LIMIT_PARALLELISM" parallelism "$PY" -m experiments.parallelism.run --preset "$PRESET" \
        --out "$OUT/sweep" --report_dir "$REPORT" ;;
    ablation)
      part "$LIMIT_ABLATION" ablation "$PY" experiments/gpu/ablation.py --out "$OUT/ablation.jsonl" \
        $ABLATION --loss-chunk "$CHUNK" ${LEVERS:+--levers "$LEVERS"} -- \
        --model transformer --task train --dtype bfloat16 --attention-dropout 0 $STEPS $BASE ;;
    bench)
      bench transformer-base --model transformer --task train --attention-dropout 0 $BASE
      # the output layer and loss a chunk of tokens at a time: no float32 [tokens, vocabulary] logits
      bench transformer-base-chunked --model transformer --task train --attention-dropout 0 --loss-chunk "$CHUNK" $BASE
      bench transformer-big --model transformer --task train --attention-dropout 0 $BIG
      bench rnn-attention --model rnn_attention --task train $RNN
      bench rnn-seq2seq --model rnn_seq2seq --task train $RNN
      # the fourth family at the same sizes, its time walked by the associative scan and sequentially
      bench mingru-attention --model minrnn_attention --task train --scan associative $RNN
      bench mingru-attention-sequential --model minrnn_attention --task train --scan sequential $RNN ;;
    cudnn)
      # the encoder through cuDNN against the scan, like for like: float32 (cuDNN's LSTM takes no other)
      bench rnn-attention-f32 --model rnn_attention --task train --dtype float32 $RNN
      bench rnn-attention-cudnn --model rnn_attention --task train --dtype float32 --encoder-impl cudnn $RNN ;;
    decode)
      bench greedy --model transformer --task decode $DECODE
      bench beam-4 --model transformer --task decode --beam 4 $DECODE ;;
    profile)
      profile profile $BASE
      profile profile-short $SHORT ;;  # the same tokens as 4x the sentences of a quarter the length: the sweep's slow n = 16
    flax)
      FLAX_WMT=${FLAX_WMT:-third_party/flax_wmt}
      if [ -f "$FLAX_WMT/models.py" ] && [ -f "$FLAX_WMT/train.py" ]; then
        row flax-wmt "$LIMIT_FLAX" bash -c '"$0" experiments/gpu/flax_wmt.py --example "'"$FLAX_WMT"'" "$@" >> "'"$OUT"'/bench.jsonl"' "$PY" $STEPS $BASE
      else
        echo "[flax-wmt] skipped: no $FLAX_WMT/{models,train}.py (google/flax's examples/wmt)" >&2
      fi ;;
  esac
done
"$PY" experiments/gpu/summary.py "$OUT/bench.jsonl" "$((SECONDS - start))"
if [ -n "$unfinished" ]; then
  echo "unfinished:$unfinished; run the same command again (the same OUT) to resume" >&2
else
  echo "nothing left: every part asked for is done" >&2
fi
exit $status
