from collections import Counter

from data_prep.splits import assign_split, hash_position


def test_pinned_positions():
    # u = first 8 bytes of sha256(salt + id), big-endian, / 2**64; pinned so a change to the
    # hashing (which would reshuffle every user's split) fails here.
    assert hash_position("person_a") == 0x47082A7014D068C5 / 2**64  # = 0.2775...
    assert hash_position("a", salt="person_") == hash_position("person_a")  # salt is a plain prefix
    assert hash_position("person_a", salt="v2") == 0x37EDCFA44469EE5F / 2**64


def test_pinned_assignments():
    ids = ["person_a", "person_b", "person_e", "file0001.jpg", "file0005.jpg"]
    # u = 0.2775, 0.4212, 0.0178, 0.9821, 0.1358: below 0.2 -> eval
    assert [assign_split(g, 0.2) for g in ids] == ["train", "train", "eval", "train", "eval"]
    # u = 0.1358 is eval at 0.2 but train at 0.1
    assert assign_split("file0005.jpg", 0.1) == "train"


def test_fraction_and_determinism():
    ids = [f"g{i}" for i in range(2000)]
    first = [assign_split(g, 0.2) for g in ids]
    assert first == [assign_split(g, 0.2) for g in ids]
    share = Counter(first)["eval"] / len(ids)
    assert 0.17 < share < 0.23  # binomial sd = sqrt(.2*.8/2000) = 0.009; +-3.3 sd


def test_salt_changes_assignment():
    ids = [f"g{i}" for i in range(200)]
    assert [assign_split(g, 0.5) for g in ids] != [assign_split(g, 0.5, salt="x") for g in ids]
