"""healthledger.node"""
