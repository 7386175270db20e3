"""Resolver strategy: the latest blessed model other than the candidate.

TFX's LatestBlessedModelStrategy runs before the Trainer, so on a rerun with
nothing changed it returns the candidate itself (blessed by the previous run)
as the baseline: the Evaluator's inputs change, it reruns, and it compares
the model with itself. Resolving after the Trainer and skipping the
candidate keeps an unchanged rerun fully cached and always compares a new
model with the previous blessed one.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver

try:
    from tfx.components.evaluator import constants as _eval_consts

    _CURRENT_MODEL_ID = _eval_consts.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY
    _BLESSED = _eval_consts.ARTIFACT_PROPERTY_BLESSED_KEY
except ImportError:  # ml-pipelines-sdk without tfx.components
    _CURRENT_MODEL_ID, _BLESSED = "current_model_id", "blessed"


def latest_blessed_other_than(models: List[types.Artifact], blessings: List[types.Artifact],
                              candidate_ids: set[int]):
    """(model, blessing) of the newest blessed model not in candidate_ids, or (None, None)."""
    blessed = {b.get_int_custom_property(_CURRENT_MODEL_ID): b
               for b in blessings if b.get_int_custom_property(_BLESSED) == 1}
    for model in sorted(models, key=lambda a: a.id, reverse=True):
        if model.id in blessed and model.id not in candidate_ids:
            return model, blessed[model.id]
    return None, None


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """Inputs `model`, `model_blessing` (all in MLMD) and `candidate` (the Trainer's model)."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        del store
        model, blessing = latest_blessed_other_than(
            input_dict.get("model", []), input_dict.get("model_blessing", []),
            {a.id for a in input_dict.get("candidate", [])})
        return {"model": [model] if model else [], "model_blessing": [blessing] if blessing else [],
                "candidate": list(input_dict.get("candidate", []))}
