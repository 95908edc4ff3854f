"""Inclusion-proof generation and verification times over a large global log
(same as `healthledger bench proof`).

Usage: python benchmarks/proof.py [LEAVES]
"""

from __future__ import annotations

import json
import sys

from healthledger.cli.bench import proof_benchmark


def main() -> None:
    """Print the figures as JSON."""
    leaves = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(proof_benchmark(leaves).to_json(), indent=2))


if __name__ == "__main__":
    main()
