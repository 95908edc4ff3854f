"""Committed transactions per second of the embedded node (same as `healthledger bench commit`).

Usage: python benchmarks/commit.py [TRANSACTIONS]
"""

from __future__ import annotations

import json
import sys

from healthledger.cli.bench import commit_benchmark


def main() -> None:
    """Print the figures as JSON."""
    transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(json.dumps(commit_benchmark(transactions, status=print).to_json(), indent=2))


if __name__ == "__main__":
    main()
