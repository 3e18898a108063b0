"""Inference: decoding (greedy, beam, sampling) against the model contract, text in and out,
and a trained model read back from its workdir (parameters only; nothing here imports training)."""
