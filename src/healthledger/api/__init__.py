"""healthledger.api"""
