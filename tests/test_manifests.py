"""Loading submitted manifests: documents with their lines, problems instead of exceptions."""
from __future__ import annotations

from grader.i18n import Text
from grader.cluster import known_kinds
from grader.manifests import Budget, load_path, load_text

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  containers: [{name: web, image: httpd}]\n"


def test_directory_reads_its_own_files_like_kubectl(tmp_path):
    (tmp_path / "b.yaml").write_text(POD + "---\napiVersion: v1\nkind: Service\nmetadata: {name: hello}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yml").write_text("apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: r}\n")
    (tmp_path / "c.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}')
    (tmp_path / "notes.txt").write_text("ignored")
    docs, problems = load_path(tmp_path)
    assert problems == []
    assert [(d.obj["kind"], d.line) for d in docs] == [("Pod", 1), ("Service", 8), ("ConfigMap", 1)]
    assert docs[0].path.endswith("b.yaml")
    docs, problems = load_path(tmp_path, recursive=True)
    assert problems == []
    assert [(d.obj["kind"], d.line) for d in docs] == [("Pod", 1), ("Service", 8), ("ConfigMap", 1), ("Route", 1)]
    assert docs[-1].path == str(tmp_path / "sub" / "a.yml")


def test_only_subfolders_without_recursive_says_so(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pod.yaml").write_text(POD)
    docs, problems = load_path(tmp_path)
    assert docs == [] and len(problems) == 1
    assert "No manifests" in problems[0].message.en and "-R" in problems[0].message.en and "-R" in problems[0].message.ja


def test_single_file_is_read_whatever_its_name(tmp_path):
    f = tmp_path / "pod.txt"
    f.write_text(POD)
    docs, problems = load_path(f)
    assert problems == [] and [d.obj["kind"] for d in docs] == ["Pod"]


def test_malformed_yaml_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(POD + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   bad: indent\n")
    docs, problems = load_path(f)
    assert [d.obj["kind"] for d in docs] == ["Pod"]
    assert len(problems) == 1 and problems[0].line == 12
    assert isinstance(problems[0].message, Text) and "YAML" in problems[0].message.en and problems[0].message.ja


def test_unknown_kind_and_missing_fields(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("apiVersion: v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Potato\n"
                 "metadata: {name: b}\n---\nkind: Pod\nmetadata: {}\n---\n- just\n- a list\n")
    docs, problems = load_path(f, budget=Budget(kinds=known_kinds()))
    assert docs == []
    assert [p.line for p in problems] == [1, 5, 9, 12]
    assert "apps/v1" in problems[0].message.en
    assert "Unknown kind" in problems[1].message.en
    assert "apiVersion" in problems[2].message.en and "metadata.name" in problems[2].message.en
    assert "not a mapping" in problems[3].message.en


def test_kinds_are_left_to_the_server_when_not_known(tmp_path):
    """Without the target's kinds (a real cluster), a kind this grader has never heard of loads:
    the server, which may well serve it, says whether it exists."""
    f = tmp_path / "x.yaml"
    f.write_text("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}\n")
    docs, problems = load_path(f)
    assert problems == [] and [d.obj["kind"] for d in docs] == ["CronJob"]
    docs, problems = load_path(f, budget=Budget(kinds=known_kinds()))
    assert docs == [] and "Unknown kind “CronJob”" in problems[0].message.en


def test_list_is_flattened(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
                 "- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n")
    docs, problems = load_path(f)
    assert problems == [] and [d.obj["metadata"]["name"] for d in docs] == ["a", "b"]


def test_missing_path_is_a_problem(tmp_path):
    docs, problems = load_path(tmp_path / "nope")
    assert docs == [] and len(problems) == 1


def test_non_utf8_names_its_line(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(POD.encode() + b"---\nkind: caf\xe9\n")
    docs, problems = load_path(f)
    assert [d.obj["kind"] for d in docs] == [] and len(problems) == 1
    assert problems[0].line == 8 and "UTF-8" in problems[0].message.en


def test_values_json_cannot_hold_are_problems_not_crashes():
    docs, problems = load_text(POD.replace("name: hello", "name: hello\n  uid: !!binary aGVsbG8="), "bin.yaml")
    assert docs == [] and "bytes" in problems[0].message.en
    docs, problems = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {n: " + "9" * 5000 + "}\n",
                               "digits.yaml")
    assert docs == [] and problems[0].line == 4 and "cannot be loaded" in problems[0].message.en


def test_plain_anchors_and_merge_keys_still_work():
    text = ("base: &labels {app: web}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n"
            "  labels:\n    <<: *labels\n    tier: front\ndata:\n  copy: *labels\n")
    docs, problems = load_text(text, "anchors.yaml")
    assert problems == []
    assert docs[0].obj["metadata"]["labels"] == {"app": "web", "tier": "front"}
