"""Generation over any backend: transformers' own decoding (`GenerationMixin`) driving a runtime-backed model,
per-row seeded sampling, and the finish of each row (eos, stop, length). Knows no task and no table."""
