"""healthledger.ledger"""
