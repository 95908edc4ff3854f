"""healthledger.cli"""
