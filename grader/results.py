"""The results model: what every renderer (console, JUnit, CSV, JSON) reads.

Scores are computed here and only here, so every report agrees on every score.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .i18n import Text


class Outcome(str, enum.Enum):
    PASSED = "passed"   # the check holds
    FAILED = "failed"   # the student missed it
    ERROR = "error"     # the grader could not see or evaluate it


class Visibility(str, enum.Enum):
    """Gradescope's meanings: hidden checks count only in batch grading."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    AFTER_DUE_DATE = "after_due_date"


@dataclass
class CheckResult:
    check_id: str
    title: Text
    points: float
    outcome: Outcome
    message: Text | None = None      # what was expected and what was seen
    hint: Text | None = None         # shown on failure
    command: str | None = None       # oc/kubectl command that shows the problem
    visibility: Visibility = Visibility.VISIBLE
    duration: float = 0.0            # seconds spent evaluating (last attempt)
    attempts: int = 1                # observations made before the outcome was final

    @property
    def earned(self) -> float:
        return self.points if self.outcome is Outcome.PASSED else 0.0


@dataclass
class ExerciseResult:
    """One exercise graded in one namespace."""

    exercise_id: str
    title: Text
    namespace: str
    checks: list[CheckResult] = field(default_factory=list)
    error: Text | None = None        # the whole namespace could not be graded
    duration: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.earned for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.checks if c.outcome is outcome)

    @property
    def complete(self) -> bool:
        """Every check passed and nothing errored."""
        return self.error is None and all(c.outcome is Outcome.PASSED for c in self.checks)


@dataclass
class RunResult:
    results: list[ExerciseResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 all passed; 1 some check failed; 3 only infrastructure errors kept it from passing."""
        failed = any(c.outcome is Outcome.FAILED for r in self.results for c in r.checks)
        errored = any(
            r.error is not None or any(c.outcome is Outcome.ERROR for c in r.checks)
            for r in self.results
        )
        if failed:
            return 1
        if errored:
            return 3
        return 0

    def namespaces(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.namespace, None)
        return list(seen)

    def exercises(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.exercise_id, None)
        return list(seen)
