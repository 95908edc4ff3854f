"""Offline audit rate of a freshly built ledger (same as `healthledger bench verify`).

Usage: python benchmarks/verify.py [TRANSACTIONS]
"""

from __future__ import annotations

import json
import sys

from healthledger.cli.bench import verify_benchmark


def main() -> None:
    """Print the figures as JSON."""
    transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(verify_benchmark(transactions, status=print).to_json(), indent=2))


if __name__ == "__main__":
    main()
