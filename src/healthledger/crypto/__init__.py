"""healthledger.crypto"""
