"""Benchmarks that print figures: `python -m benchmarks.bench_extract|bench_train|bench_predict`."""
