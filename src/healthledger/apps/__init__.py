"""healthledger.apps"""
