"""Wallets, system accounts and the double-entry ledger."""
