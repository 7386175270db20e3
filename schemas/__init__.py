"""The data contract's schema (see docs/data_contract.md)."""
