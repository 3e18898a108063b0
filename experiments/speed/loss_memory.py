r"""The memory a training step's loss and gradient need, with the output layer whole or chunked
(`train.loss_chunk`), from XLA's memory analysis of the compiled program: nothing is run.

    python experiments/speed/loss_memory.py [--model transformer|rnn] [--vocab 32000]
        [--batch 32] [--length 64] [--chunks 0 256 1024]

Prints one JSON line per chunk size: XLA's temporary buffer bytes (what the step needs beyond
its inputs and outputs) and the [tokens, vocabulary] float32 logits' size for scale.
"""

import argparse
import json
import platform


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--model", choices=("transformer", "rnn"), default="transformer")
  p.add_argument("--vocab", type=int, default=32000)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--length", type=int, default=64)
  p.add_argument("--chunks", type=int, nargs="+", default=[0, 256, 1024])
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp
  from attnjax import config as config_lib, models
  from attnjax.models import loss
  from attnjax.tokens import random_batch
  cfg = config_lib.transformer_model("small") if args.model == "transformer" else config_lib.rnn_model()
  model = models.build(cfg, args.vocab, args.vocab)
  params = models.init_params(model, 0)
  batch = {k: jnp.asarray(v) for k, v in random_batch(args.batch, args.length, args.length, args.vocab).items()}
  for chunk in args.chunks:
    grad = jax.jit(jax.grad(lambda p, c=chunk: loss.loss_sums(model, p, batch, None, 0.1, False, chunk=c)["loss"]))
    memory = grad.lower(params).compile().memory_analysis()
    print(json.dumps({"model": args.model, "vocab": args.vocab, "tokens": args.batch * args.length,
                      "loss_chunk": chunk, "temp_mib": round(memory.temp_size_in_bytes / 2 ** 20, 1),
                      "logits_f32_mib": round(args.batch * args.length * args.vocab * 4 / 2 ** 20, 1),
                      "backend": jax.default_backend(), "machine": platform.processor() or platform.machine()}),
          flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
