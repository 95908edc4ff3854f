"""healthledger.ordering"""
