"""Grades Kubernetes/OpenShift exercises on a live (or embedded) cluster.

The public surface is small: the ``grade`` command (``grader.cli``), the check library
(``grader.checks``) that exercise modules use, and the embedded cluster (``grader.cluster``,
beside the grading core; see design.md).
"""
__version__ = "0.1.0"
