"""drivechain: chain-of-thought benchmarks for driving vision-language models."""

__version__ = "0.1.0"
