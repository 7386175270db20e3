"""The model card's line on train.precision, from report.json's `precision` (the Trainer's
resolved choice, read from the model's metadata: serving.trained_precision)."""
from components.report.model_card import build_model_card


def test_the_card_names_the_policy_the_model_was_trained_in():
    precision = {"setting": "auto", "policy": "mixed_bfloat16", "reason": "no GPU; the CPU has avx512_bf16"}
    card = build_model_card({"model": {"architecture": "bknet"}, "precision": precision})
    assert card["model_parameters"]["model_architecture"] == (
        "bknet, trained in mixed_bfloat16 (train.precision auto: no GPU; the CPU has avx512_bf16)")


def test_a_model_without_the_record_keeps_the_bare_architecture():
    card = build_model_card({"model": {"architecture": "bknet"}, "precision": None})
    assert card["model_parameters"]["model_architecture"] == "bknet"
