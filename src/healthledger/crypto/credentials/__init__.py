"""Health credentials (EU DCC / HCERT, SMART Health Cards, SD-JWT VC) as signed formats:
decoding, offline verification against a trust source and a status source, and a
:class:`~healthledger.crypto.credentials.verdict.Verdict` with stable reason codes.

Python callers reach it through :func:`healthledger.verify.credential`."""
