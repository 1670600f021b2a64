"""Every exercise against its reference solution, an empty namespace and each broken variant.

The cases come from ``solutions/<id>/`` (files) and ``solutions/<id>/variants/<what-is-wrong>/``
(replaced files and an ``expect.yaml`` naming the checks that must fail). Each case is applied over
HTTP into its own namespace of the embedded cluster and graded in one batch per exercise, through
the same path as ``grade``.
"""
from __future__ import annotations

import pytest

from grader.apply import apply_files, solution_dir
from grader.grading import grade_on
from grader.results import Outcome
from grader.selftest import ALL, cases
from grader.settings import Settings

SETTINGS = Settings(lang="en", wait=0.0)
EXERCISES = [ex for ex in SETTINGS.available() if solution_dir(ex).is_dir()]


@pytest.fixture(scope="module")
def graded(cluster, api):
    """exercise id → [(case, ExerciseResult)], graded once for the whole module."""
    out = {}
    for ex in EXERCISES:
        spec = SETTINGS.exercise(ex)
        spec_cases = cases(spec)
        namespaces = []
        for case in spec_cases:
            ns = f"t-{ex}-{case.name}"[:60]
            cluster.create_namespace(ns)
            assert apply_files(api, list(case.files), ns) == [], f"{ex}/{case.name} does not apply"
            namespaces.append(ns)
        cluster.settle()
        result = grade_on(api, SETTINGS, [spec], namespaces, student=False, wait=0.0)
        out[ex] = list(zip(spec_cases, result.results))
    return out


def _case(graded, ex, name):
    return next(r for c, r in graded[ex] if c.name == name)


@pytest.mark.parametrize("ex", EXERCISES)
def test_solution_scores_full_marks(graded, ex):
    res = _case(graded, ex, "solution")
    bad = [(c.check_id, c.outcome.value, c.message and c.message.en) for c in res.checks if c.outcome is not Outcome.PASSED]
    assert bad == []
    assert res.score == res.max_score > 0


@pytest.mark.parametrize("ex", EXERCISES)
def test_empty_namespace_scores_zero_with_every_hint(graded, ex):
    res = _case(graded, ex, "empty")
    assert res.score == 0
    assert all(c.outcome is Outcome.FAILED for c in res.checks), [c.outcome for c in res.checks]
    assert all(c.hint is not None and c.hint.en and c.hint.ja for c in res.checks)
    assert all(c.message is not None and c.message.en and c.message.ja for c in res.checks)


def _variant_ids():
    return [(ex, c.name) for ex in EXERCISES for c in cases(SETTINGS.exercise(ex)) if c.fails != ALL and c.fails]


@pytest.mark.parametrize("ex,variant", _variant_ids(), ids=[f"{e}-{v}" for e, v in _variant_ids()])
def test_variant_fails_exactly_its_checks(graded, ex, variant):
    case, res = next((c, r) for c, r in graded[ex] if c.name == variant)
    failed = {c.check_id for c in res.checks if c.outcome is Outcome.FAILED}
    errors = {c.check_id: c.message.en for c in res.checks if c.outcome is Outcome.ERROR}
    assert errors == {}
    assert failed == set(case.fails)
    lost = sum(c.points for c in res.checks if c.check_id in case.fails)
    assert res.score == res.max_score - lost


def test_every_exercise_has_variants():
    """A broken variant per typical mistake: an exercise without any is not tested for precision."""
    for ex in EXERCISES:
        assert len(cases(SETTINGS.exercise(ex))) >= 3, ex


def test_solutions_without_routes_use_their_ingress(tmp_path):
    """On a cluster without route.openshift.io (detected by discovery) the solutions still score
    full marks, with their ingress/ files in place of the Route."""
    from grader.embedded import embedded
    route_exercises = [ex for ex in EXERCISES if (solution_dir(ex) / "ingress").is_dir()]
    assert route_exercises, "some exercise should expose its service outside the cluster"
    with embedded(route_api=False) as (cluster, api):
        assert not api.served("Route")
        for ex in route_exercises:
            spec = SETTINGS.exercise(ex)
            (solution,) = [c for c in cases(spec, routes=False) if c.name == "solution"]
            assert not any(p.name == "route.yaml" for p in solution.files)
            cluster.create_namespace(f"noroute-{ex}")
            assert apply_files(api, list(solution.files), f"noroute-{ex}") == []
            cluster.settle()
            (res,) = grade_on(api, SETTINGS, [spec], [f"noroute-{ex}"], student=True, wait=0.0).results
            assert [(c.check_id, c.outcome) for c in res.checks if c.outcome is not Outcome.PASSED] == []


def test_several_exercises_in_one_run_keep_their_own_checks(graded, api):
    """One run grading every exercise (as `grade ex1 ex2 ... --out` does): each exercise's
    solution namespace still scores full marks under its own exercise, with its own parameters,
    although several exercises have checks of the same name (test_pod_ready)."""
    specs = [SETTINGS.exercise(ex) for ex in EXERCISES]
    namespaces = [f"t-{ex}-solution"[:60] for ex in EXERCISES]
    result = grade_on(api, SETTINGS, specs, namespaces, student=False, wait=0.0)
    assert len(result.results) == len(specs) * len(namespaces)
    for res in result.results:
        if res.namespace == f"t-{res.exercise_id}-solution"[:60]:
            assert res.score == res.max_score, (res.exercise_id, [(c.check_id, c.message) for c in res.checks if c.message])
