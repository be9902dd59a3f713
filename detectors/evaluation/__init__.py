"""Evaluation of detectors on public benchmarks, each under its own published protocol (SKAB, NAB)."""
