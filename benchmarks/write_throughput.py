"""Write throughput of a three-member quorum next to pysyncobj and etcd (the same as ``steer bench``).

    python benchmarks/write_throughput.py [--clients 1,64,256,1000] [--seconds 8] [--runs 3]
        [--compare pysyncobj,etcd] [--json]
"""

from __future__ import annotations

from runtime.bench.throughput import main

if __name__ == "__main__":
    raise SystemExit(main())
