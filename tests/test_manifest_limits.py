"""A hostile submission cannot make the manifest loader follow a link, hang, or run out of memory."""
from __future__ import annotations

import os
import time

import pytest

from grader import manifests
from grader.manifests import MAX_DEPTH, MAX_DOCUMENTS, Budget, load_path, load_text

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  containers: [{name: web, image: httpd}]\n"
SECRET = "sentinel-7f3c9a-do-not-print"

# The classic "billion laughs" (13 lines): 9^9 strings once every alias is expanded.
ANCHOR_BOMB = """apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _texts(problems) -> str:
    return "\n".join(p.path + p.message.en + p.message.ja for p in problems)


# --- links -----------------------------------------------------------------------------------------
def test_link_to_a_file_outside_is_named_and_never_read(tmp_path):
    outside = tmp_path / "kubeconfig"
    outside.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {SECRET}}}\ndata: {{token: {SECRET}}}\n")
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "pod.yaml").write_text(POD)
    (sub / "stolen.yaml").symlink_to(outside)
    docs, problems = load_path(sub)
    assert [d.obj["kind"] for d in docs] == ["Pod"]
    assert [p.path for p in problems] == [str(sub / "stolen.yaml")]
    assert "symbolic link" in problems[0].message.en and "シンボリックリンク" in problems[0].message.ja
    assert SECRET not in _texts(problems) and SECRET not in repr(docs)


def test_link_to_a_directory_is_not_followed_even_with_recursive(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pod.yaml").write_text(POD)
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "solution").symlink_to(elsewhere, target_is_directory=True)
    docs, problems = load_path(sub, recursive=True)
    assert docs == []
    assert str(sub / "solution") in _texts(problems) and "symbolic link" in _texts(problems)


def test_the_submission_itself_being_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "pod.yaml").write_text(POD)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    (tmp_path / "pod-link.yaml").symlink_to(real / "pod.yaml")
    for link in ("link", "pod-link.yaml"):
        docs, problems = load_path(tmp_path / link)
        assert docs == [] and len(problems) == 1 and "symbolic link" in problems[0].message.en


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path):
    """The race: the name was a file when the folder was listed and is a link when opened."""
    (tmp_path / "target.yaml").write_text(POD)
    (tmp_path / "swapped.yaml").symlink_to(tmp_path / "target.yaml")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        got = manifests._read("swapped.yaml", fd, "swapped.yaml", Budget())
    finally:
        os.close(fd)
    assert isinstance(got, manifests.ManifestProblem) and "symbolic link" in got.message.en


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "pod.yaml").write_text(POD)
    docs, problems = load_path(tmp_path)
    assert [d.obj["kind"] for d in docs] == ["Pod"]
    assert [p.path for p in problems] == [str(tmp_path / "pipe.yaml")] and "regular file" in problems[0].message.en


# --- sizes and counts ------------------------------------------------------------------------------
def _filler(n: int) -> str:
    """``n`` bytes of YAML comment after a valid ConfigMap: large but cheap to parse."""
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: filler}\n"
    line = "# " + "x" * 1021 + "\n"
    return head + line * ((n - len(head)) // len(line))


def test_a_file_over_one_mib_is_refused_and_the_others_still_load(tmp_path):
    (tmp_path / "big.yaml").write_text(_filler(manifests.MAX_FILE_BYTES) + "# " + "y" * 2048 + "\n")
    (tmp_path / "pod.yaml").write_text(POD)
    docs, problems = load_path(tmp_path)
    assert [d.obj["kind"] for d in docs] == ["Pod"]
    assert [p.path for p in problems] == [str(tmp_path / "big.yaml")] and "1 MiB" in problems[0].message.en


def test_more_than_ten_mib_in_all_stops_reading(tmp_path):
    for i in range(12):
        (tmp_path / f"part{i:02}.yaml").write_text(_filler(manifests.MAX_FILE_BYTES - 4096).replace("filler", f"f{i}"))
    docs, problems = load_path(tmp_path)
    assert len(docs) == 10, "ten files of just under 1 MiB fit in 10 MiB"
    assert len(problems) == 1 and problems[0].path.endswith("part10.yaml") and "10 MiB" in problems[0].message.en


def test_more_than_five_hundred_documents_stops_reading(tmp_path):
    many = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(MAX_DOCUMENTS + 50))
    (tmp_path / "a.yaml").write_text(many)
    (tmp_path / "b.yaml").write_text(POD)
    docs, problems = load_path(tmp_path)
    assert len(docs) == MAX_DOCUMENTS
    assert len(problems) == 1 and problems[0].line == 4 * MAX_DOCUMENTS + 2 and "500" in problems[0].message.en


def test_items_of_a_list_count_as_documents():
    items = "".join(f"- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n" for i in range(MAX_DOCUMENTS + 1))
    docs, problems = load_text("apiVersion: v1\nkind: List\nitems:\n" + items, "list.yaml")
    assert len(docs) == MAX_DOCUMENTS and "Too many objects" in problems[0].message.en


# --- YAML that explodes ----------------------------------------------------------------------------
def test_anchor_bomb_is_a_problem_within_seconds(tmp_path):
    (tmp_path / "bomb.yaml").write_text(ANCHOR_BOMB)
    start = time.monotonic()
    docs, problems = load_path(tmp_path)
    assert time.monotonic() - start < 5, "generous: it takes milliseconds"
    assert docs == [] and len(problems) == 1
    assert problems[0].line == 10 and "alias" in problems[0].message.en


def test_an_alias_inside_its_own_anchor_is_a_problem():
    docs, problems = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &d {self: *d}\n", "loop.yaml")
    assert docs == [] and problems[0].line == 4 and "contains it" in problems[0].message.en


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_deep_flow_nesting_is_a_problem_with_a_line(tmp_path, name):
    (tmp_path / name).write_text("[" * 100_000)
    docs, problems = load_path(tmp_path)
    assert docs == [] and len(problems) == 1 and problems[0].line == 1
    assert "nest" in problems[0].message.en.lower()


def test_deep_block_nesting_stops_at_the_limit():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n" + "".join(
        "  " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 20)) + "  " * (MAX_DEPTH + 21) + "end\n"
    docs, problems = load_text(text, "block.yaml")
    assert docs == [] and len(problems) == 1 and "at most 100 levels" in problems[0].message.en
    assert 4 < problems[0].line < MAX_DEPTH + 10


def test_deep_json_under_the_interpreter_limit_is_still_refused():
    docs, problems = load_text("[" * 500 + "]" * 500, "deep.json")
    assert docs == [] and "Nested too deeply" in problems[0].message.en


def test_a_megabyte_of_nested_brackets_is_cut_off_by_the_value_budget():
    """Half a million values in 1 MiB: the loader stops at its budget instead of composing them all."""
    unit = "[" * 50 + "]" * 50 + ","
    docs, problems = load_text("[" + unit * (manifests.MAX_FILE_BYTES // len(unit)) + "]", "brackets.yaml")
    assert docs == [] and len(problems) == 1 and "Too many values" in problems[0].message.en


def test_an_anchor_bomb_does_not_use_up_the_other_files_budget(tmp_path):
    (tmp_path / "a-bomb.yaml").write_text(ANCHOR_BOMB)
    (tmp_path / "b-bomb.yaml").write_text(ANCHOR_BOMB)
    (tmp_path / "pod.yaml").write_text(POD.replace("name: hello", "name: hello\n  labels: &l {app: web}\n  annotations: *l"))
    docs, problems = load_path(tmp_path)
    assert [p.path for p in problems] == [str(tmp_path / "a-bomb.yaml"), str(tmp_path / "b-bomb.yaml")]
    assert [d.obj["metadata"]["annotations"] for d in docs] == [{"app": "web"}]
