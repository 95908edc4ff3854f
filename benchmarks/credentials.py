"""Offline verification time per credential, one core, for each encoding (goal: p99 under
2 ms), each one's QR version at M, and a status check against a cached list of 10^6
entries: the verification half of ``healthledger bench credentials``, which also
measures issuance.

Usage: python benchmarks/credentials.py [SAMPLES]
"""

from __future__ import annotations

import json
import sys

from healthledger.apps.credentials.bench import credentials_benchmark


def main() -> None:
    """Print the figures as JSON."""
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(json.dumps(credentials_benchmark(samples=samples, status=print), indent=1))


if __name__ == "__main__":
    main()
