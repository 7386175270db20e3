"""One measured figure and its goal, as `bench-results.json` stores it."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    goal: float
    unit: str
    better: str  # "higher" | "lower"
    # What the figure was computed from (per dataset / task / side), stored beside it when given.
    detail: dict = field(default=None, compare=False)

    def __post_init__(self):
        if self.better not in ("higher", "lower"):
            raise ValueError(f"Figure.better must be 'higher' or 'lower', received {self.better!r}")

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.better == "higher" else self.value <= self.goal

    def as_json(self) -> dict:
        out = {"value": self.value, "goal": self.goal, "unit": self.unit, "better": self.better}
        if self.detail is not None:
            out["detail"] = self.detail
        return out
