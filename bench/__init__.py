"""The benchmarks (docs/benchmarks.md): `python -m bench.ingest`, `python -m bench.train`,
`python -m bench.inference`; what they share is in bench/common.py."""
