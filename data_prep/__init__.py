"""Conversion of source datasets into TFRecords of the data contract.

`python -m data_prep --config FILE --output-dir DIR` runs it; see docs/data_prep.md.
"""
