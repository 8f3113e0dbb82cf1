"""The paper's experiments and the benchmark: one absl-flag module per study."""
