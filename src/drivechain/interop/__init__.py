"""Interoperability with other benchmarks' data formats and scorers (one sub-package per benchmark)."""
