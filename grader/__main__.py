"""``python -m grader`` is ``grade``."""
from .cli import entry

entry()
