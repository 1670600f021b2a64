"""The project's exceptions.

One root, three branches, because each branch ends differently everywhere (console, exit code,
JUnit, gradebook):

* ``CheckFailed`` -- the student's work does not meet a check: a *failure*, points lost.
* ``InfraError`` -- the grader could not see or evaluate: an *error*, never a silent zero.
  ``ClusterUnavailable`` is the whole-run variant (exit 3).
* ``UsageError`` -- the command line, an exercise spec, a course file or a manifest is wrong (exit 2).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .i18n import Text


class GraderError(Exception):
    """Root of every error the grader raises on purpose."""


# --- student-facing branch -------------------------------------------------------------------
class CheckFailed(GraderError):
    """The student's work does not meet a check.

    ``message`` is bilingual; ``command`` is the ``oc``/``kubectl`` command that shows the problem.
    """

    def __init__(self, message: "Text", command: str | None = None) -> None:
        super().__init__(message.en)
        self.message = message
        self.command = command


# --- infrastructure branch -------------------------------------------------------------------
class InfraError(GraderError):
    """The grader could not observe or evaluate something; never the student's fault."""

    def __init__(self, message: "Text") -> None:
        super().__init__(message.en)
        self.message = message


class ApiError(InfraError):
    """The API server answered a request with an error Status."""

    def __init__(self, message: "Text", status: int = 0, reason: str = "", body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body[:4096]


class CannotSee(ApiError):
    """Forbidden (403) or not served (404 on a list): the grader may not read this kind here."""


class ClusterUnavailable(InfraError):
    """The cluster cannot be used at all: unreachable, TLS, 401, no kubeconfig or namespace."""


class Unauthorized(ClusterUnavailable):
    """401: the credentials are missing, expired or wrong; retrying will not help."""


# --- usage branch ----------------------------------------------------------------------------
class UsageError(GraderError):
    """Bad command line or input file. Operator-facing messages (specs, course files) are plain
    English; the ones a student meets (an unknown exercise, a missing file) are bilingual."""

    def __init__(self, message: "str | Text") -> None:
        from .i18n import Text
        text = message if isinstance(message, Text) else Text.same(message)
        super().__init__(text.en)
        self.message = text


class SpecError(UsageError):
    """An exercise spec or course file is invalid; names the file and the field."""

    def __init__(self, path: str, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")
        self.path = path
        self.field = field
        self.problem = problem

