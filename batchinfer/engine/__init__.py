"""The local executor: source -> batcher -> pipeline -> sink."""
