"""Deterministic, group-aware split assignment.

A group (person, file) goes to `eval` when its hash position
u = first 8 bytes of sha256(salt + group_id) as a big-endian int / 2**64
is below the eval fraction, else to `train`. Hashing the group, not the
record, keeps every record of one identity in the same split; the salt lets
a user draw a different split without touching the data.
"""
from __future__ import annotations

import hashlib

SPLITS = ("train", "eval")


def hash_position(group_id: str, salt: str = "") -> float:
    """u in [0, 1): where this group falls on the split line."""
    digest = hashlib.sha256((salt + group_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(group_id: str, eval_fraction: float, salt: str = "") -> str:
    return "eval" if hash_position(group_id, salt) < eval_fraction else "train"
