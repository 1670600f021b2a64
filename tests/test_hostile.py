"""Hostile student data in the cluster (control chars, U+FFFE, ANSI, ]]>, entities, bidi marks, 1 MB strings) yields valid JUnit/CSV/JSON and quoted, bounded console text.

The hostile objects are created in the embedded cluster over HTTP (it accepts any label value,
annotation, image string or ConfigMap data, which a real API server would refuse only for labels),
then graded through the normal path; every renderer's output is checked.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import pytest

from grader.apply import apply_files, manifest_files, solution_dir
from grader.grading import grade_on
from grader.junit import render_junit
from grader.reports import gradebook_csv, gradescope_json, render_console, to_json
from grader.results import Outcome
from grader.settings import Settings
from tests.conftest import xsd_or_skip

SETTINGS = Settings(lang="en", wait=0.0)
EVIL = ("\x1b[31mRED\x1b]0;title\x07\x1b[0m ]]> <![CDATA[x]]> &amp; &lt;tag/> &#0; \x00\x07\x08\x0b\x7f\x9b"
        "\ufffe\uffff \u202eevil\u202c \u200f\u2066rtl\u2069 \ud800 '\",;\r\n=cmd|' ")
HUGE = EVIL + "A" * 1_000_000 + EVIL
PAGE = HUGE.replace("\ud800", "")   # a page is bytes: a lone surrogate cannot be served (Go's API server would store U+FFFD)
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]")


@pytest.fixture(scope="module")
def hostile_run(cluster, api):
    """ex1 and ex6 graded in namespaces whose objects are full of hostile strings."""
    ns1, ns6 = "hostile-ex1", "hostile-ex6"
    for ns in (ns1, ns6):
        cluster.create_namespace(ns)
    api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "hello", "labels": {"app": HUGE, "x": EVIL}, "annotations": {"note": HUGE}},
        "spec": {"containers": [{"name": "c", "image": "quay.io/" + HUGE, "ports": [{"containerPort": 1}]}]}}, ns1)
    api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other-" + "a" * 40, "labels": {"k": EVIL}},
                "spec": {"containers": [{"name": "c", "image": EVIL}]}}, ns1)
    files = [p for p in manifest_files(solution_dir("ex6")) if p.name != "configmap.yaml"]
    assert apply_files(api, files, ns6) == []
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello-page", "annotations": {"a": PAGE}},
                "data": {"index.html": PAGE, "other": PAGE[:300]}}, ns6)
    cluster.settle()
    ex6 = SETTINGS.exercise("ex6")
    ex6 = dataclasses.replace(ex6, params={**ex6.params, "expected_text": "Hello from OpenShift"})
    run1 = grade_on(api, SETTINGS, [SETTINGS.exercise("ex1")], [ns1, "hostile-none"], student=False, wait=0)
    run6 = grade_on(api, SETTINGS, [ex6], [ns6, "hostile-none"], student=False, wait=0)
    return run1.results + run6.results


def test_hostile_values_reach_the_messages_only_quoted_and_cut(hostile_run):
    failed = {(r.exercise_id, c.check_id): c.message for r in hostile_run if r.namespace.startswith("hostile-ex")
              for c in r.checks if c.outcome is Outcome.FAILED}
    assert not [c for r in hostile_run for c in r.checks if c.outcome is Outcome.ERROR]
    # the student's strings are there (so they were really read), but cleaned and truncated
    assert "RED" in failed[("ex1", "pod-label")].en and "RED" in failed[("ex1", "pod-image")].en
    assert "Hello from OpenShift" in failed[("ex6", "page-answers")].en and "RED" in failed[("ex6", "page-answers")].en
    for msg in failed.values():
        for text in (msg.en, msg.ja):
            assert FORBIDDEN.search(text) is None and "\x1b" not in text
            assert len(text) < 2000, len(text)


def test_console_is_plain_bounded_text(hostile_run):
    for lang in ("en", "ja"):
        for color in (False, True):
            out = render_console(hostile_run, lang, color=color, include_hidden=True)
            plain = re.sub(r"\x1b\[[0-9;]*m", "", out) if color else out   # our own colours only
            assert "\x1b" not in plain and FORBIDDEN.search(plain) is None
            assert max(len(line) for line in plain.splitlines()) < 2000
            assert len(out) < 50_000


def test_junit_validates_against_the_schema(hostile_run):
    schema = xsd_or_skip()
    from lxml import etree
    for lang in ("en", "ja"):
        xml = render_junit(hostile_run, lang)
        data = xml.encode("utf-8") if isinstance(xml, str) else xml
        doc = etree.fromstring(data)
        schema.assertValid(doc)
        assert len(data) < 2_000_000
        failures = doc.findall(".//failure")
        assert failures and any("RED" in (f.get("message", "") + (f.text or "")) for f in failures)


def test_csv_and_json_are_valid(hostile_run):
    text = gradebook_csv(hostile_run)
    rows = list(csv.reader(io.StringIO(text)))
    assert len({len(r) for r in rows}) == 1 and len(rows) >= 3
    assert FORBIDDEN.search(text) is None
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row)
    for lang in ("en", "ja"):
        for doc in (to_json(hostile_run, lang), gradescope_json(hostile_run, lang)):
            encoded = json.dumps(doc, ensure_ascii=False)
            assert json.loads(encoded) == doc
            encoded.encode("utf-8")                       # no lone surrogates
            assert FORBIDDEN.search(encoded) is None and len(encoded) < 2_000_000
