"""Data: the built-in corpora, TFDS builders, the SentencePiece tokenizer and the Grain pipeline.

Nothing here knows about models. `prepare.prepare(config.data)` builds a corpus and its
tokenizer once; `pipeline.train_iterator` and `pipeline.eval_batches` read it.
"""
