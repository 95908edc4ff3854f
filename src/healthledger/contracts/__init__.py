"""healthledger.contracts"""
