"""healthledger.web"""
