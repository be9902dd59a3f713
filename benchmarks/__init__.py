"""Load and latency benchmarks (not tests); each prints its figures and ends with one JSON line."""
