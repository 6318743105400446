"""The write-throughput benchmark behind ``steer bench`` and ``benchmarks/write_throughput.py``."""
