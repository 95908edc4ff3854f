"""healthledger: a consortium ledger for public health and medical governance."""
