"""Every kind of stack-file mistake stops the program with one line naming key, value and what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components.config import ConfigError, StackSettings, parse_settings
from components.plan import evaluate, stack_config

from conftest import PROJECT

GOOD = {"cluster": {"type": "kind", "name": "dev"}, "database": {"tier": "local"}}


def with_(**changes):
    data = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


@pytest.mark.parametrize("data,message", [
    # a misspelt key
    (with_(database__verison=17),
     "pgtiers:database.verison: unknown key; allowed keys here: tier, name, version, username, namespace, "
     "storageGb, nodePort, hostPort"),
    (with_(app__secret_name="db"), "pgtiers:app.secret_name: unknown key; allowed keys here: namespaces, secretName, createNamespaces, connectivityCheck"),
    ({**GOOD, "protected": True}, "pgtiers:protected: unknown key; allowed keys here: cluster, database, app, migrations, protect"),
    # a wrong tier / cluster type
    (with_(database__tier="auroa"), "pgtiers:database.tier: 'auroa' is not one of local, neon, aurora, cnpg, ack-rds"),
    (with_(cluster__type="gke"), "pgtiers:cluster.type: 'gke' is not one of kind, eks"),
    # a string where a number belongs, a number where a bool belongs
    (with_(database__storageGb="lots"), "pgtiers:database.storageGb: 'lots' is not a whole number"),
    (with_(database__version="18"), "pgtiers:database.version: '18' is not a whole number"),
    ({**GOOD, "protect": "yes"}, "pgtiers:protect: 'yes' is not true or false"),
    (with_(app__createNamespaces=1), "pgtiers:app.createNamespaces: 1 is not true or false"),
    # out of range
    (with_(database__nodePort=8080), "pgtiers:database.nodePort: 8080 is below the minimum 30000"),
    (with_(database__storageGb=5000), "pgtiers:database.storageGb: 5000 is above the maximum 1000"),
    (with_(database__version=13), "pgtiers:database.version: 13 is not a supported PostgreSQL major; allowed: 14, 15, 16, 17, 18"),
    (with_(cluster__name="Dev_Cluster"), "pgtiers:cluster.name: 'Dev_Cluster' is not a Kubernetes name"),
    (with_(app__namespaces=["app", "Web"]), "pgtiers:app.namespaces[1]: 'Web' is not a Kubernetes name"),
    (with_(app__namespaces=[]), "pgtiers:app.namespaces: [] needs at least 1 item(s)"),
    (with_(database__name="my-db"), "pgtiers:database.name: 'my-db' is not a plain PostgreSQL identifier"),
    # missing required keys
    ({"cluster": {"type": "kind", "name": "dev"}}, "pgtiers:database: required key is missing"),
    (with_(cluster__name=None) | {"cluster": {"type": "kind"}}, "pgtiers:cluster.name: required key is missing"),
    ({"cluster": {"type": "kind", "name": "d"}, "database": {"name": "x"}},
     "pgtiers:database.tier: required key is missing; one of local, neon, aurora, cnpg, ack-rds"),
    ({"cluster": {"type": "kind", "name": "d"}, "database": "local"}, "pgtiers:database: 'local' is not an object of keys and values"),
    # a tier the cluster cannot host
    (with_(database__tier="aurora"), "pgtiers:database.tier: 'aurora' cannot run on a kind cluster (pgtiers:cluster.type); it needs: eks"),
    (with_(database__tier="ack-rds"), "pgtiers:database.tier: 'ack-rds' cannot run on a kind cluster"),
    # the database's namespace must not double as an app namespace
    (with_(database__namespace="app"), "pgtiers:database.namespace: 'app' is also in pgtiers:app.namespaces"),
])
def test_each_mistake_gets_one_clear_line(data, message):
    with pytest.raises(ConfigError) as caught:
        parse_settings(data)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_several_mistakes_report_the_first_and_count_the_rest():
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)$"):
        parse_settings(with_(database__storageGb="x", database__nodePort=1))


def test_a_good_stack_parses_with_safe_defaults():
    s = parse_settings(GOOD)
    assert isinstance(s, StackSettings)
    assert s.protect is False and s.app.namespaces == ["app"] and s.app.secret_name == "database"
    assert s.database.version == 18 and s.database.node_port == 30432


def test_bad_config_registers_nothing(monkeypatch):
    from components import plan

    config = stack_config("dev")
    config["pgtiers:database"] = json.dumps({"tier": "local", "storageGb": "lots"})
    monitors = []
    real = plan._spy_monitor_class

    def remember():
        cls = real()

        class Remembered(cls):
            def __init__(self, mocks):
                super().__init__(mocks)
                monitors.append(self)

        return Remembered

    monkeypatch.setattr(plan, "_spy_monitor_class", remember)
    with pytest.raises(ConfigError, match="storageGb"):
        evaluate("dev", config=config)
    assert len(monitors) == 1 and monitors[0].registrations == []


def test_unknown_top_level_key_in_a_stack_file_is_caught():
    config = stack_config("dev")
    config["pgtiers:databse"] = json.dumps({"tier": "local"})
    with pytest.raises(ConfigError, match=r"^pgtiers:databse: unknown key; allowed keys: pgtiers:cluster"):
        evaluate("dev", config=config)


def test_plan_cli_exits_2_with_one_line_and_no_traceback(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((PROJECT / name).read_text())
    (project / "Pulumi.typo.yaml").write_text(
        "config:\n  pgtiers:cluster: {type: kind, name: dev}\n  pgtiers:database: {tier: auroa}\n")
    done = subprocess.run(
        [sys.executable, "-m", "components", "plan", "--stack", "typo", "--project-dir", str(project),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=PROJECT)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: pgtiers:database.tier: 'auroa' is not one of local, neon, aurora, cnpg, ack-rds"
    assert "Traceback" not in done.stderr + done.stdout


def test_config_error_is_a_clean_pulumi_error():
    import pulumi

    # The Python language host prints a RunError's message without a traceback.
    assert issubclass(ConfigError, pulumi.RunError)


def test_project_file_declares_only_types_pulumi_accepts():
    import yaml

    project = yaml.safe_load((PROJECT / "Pulumi.yaml").read_text())
    assert project["name"] == "pgtiers"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"] == ".venv"
    for key, decl in project["config"].items():
        # Pulumi's project schema knows string, integer, boolean and array; objects can't be declared.
        assert decl["type"] in ("string", "integer", "boolean", "array"), key
        assert decl.get("description"), key


def test_the_harness_refuses_what_the_engine_would_refuse():
    import pulumi_kubernetes as k8s

    from components.plan import PlanError

    def program():
        provider = k8s.Provider("p", kubeconfig="x")
        for _ in range(2):
            k8s.core.v1.Namespace("same", opts=__import__("pulumi").ResourceOptions(provider=provider))

    with pytest.raises(PlanError, match="share the URN .*::same"):
        evaluate("dev", config={}, program=program)


@pytest.mark.parametrize("database,message", [
    ({"tier": "aurora", "identifier": "p", "kmsKeyArn": "not-an-arn"},
     "pgtiers:database.kmsKeyArn: 'not-an-arn' is not a KMS key or alias ARN"),
    ({"tier": "aurora", "identifier": "p", "minAcu": "0.5"}, "pgtiers:database.minAcu: '0.5' is not a number"),
    ({"tier": "aurora", "identifier": "p", "version": True}, "pgtiers:database.version: True is not a whole number"),
])
def test_aurora_values_name_their_key(database, message):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"cluster": {"type": "eks", "name": "p"}, "database": database})
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_namespace_listed_twice_is_refused():
    with pytest.raises(ConfigError, match=r"^pgtiers:app.namespaces: \['app', 'app'\] names app more than once"):
        parse_settings(with_(app__namespaces=["app", "app"]))
