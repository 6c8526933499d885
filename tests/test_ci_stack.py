"""The ci program (kind + Neon branch + app Secret) in preview and up mode."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.connection import SECRET_KEYS
from components.fakes import FAKE_PASSWORD
from components.plan import Secret, evaluate, plan_document, stack_config


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def ci(request):
    return evaluate("ci", preview=request.param)


def test_neon_branch_kind_cluster_and_app_secret(ci):
    branch = ci.one("pulumi-python:dynamic:NeonBranch")
    assert branch.parent == ci.one("pgtiers:index:NeonBranchDb").urn
    assert branch.inputs["project_id"] == "shiny-wind-028834" and branch.inputs["branch_name"] == "ci"
    assert branch.inputs["ttl_seconds"] == 86400
    assert {"password", "database_url", "direct_url"} <= set(branch.additional_secret_outputs)
    ci.one("pgtiers:index:KindCluster")
    secret = ci.one("kubernetes:core/v1:Secret")
    assert secret.inputs["metadata"]["namespace"] == "app"
    if not ci.preview:
        data = secret.inputs["stringData"].value
        assert sorted(data) == sorted(SECRET_KEYS)
        assert "-pooler." in data["DATABASE_URL"] and "-pooler." not in data["DATABASE_URL_DIRECT"]
        assert data["PGSSLMODE"] == "require"


def test_no_plain_text_secret(ci):
    text = json.dumps(plan_document(ci))
    assert FAKE_PASSWORD not in text and "postgresql://" not in text
    assert isinstance(ci.outputs["databaseUrl"], Secret) and isinstance(ci.outputs["databaseUrlDirect"], Secret)


@pytest.mark.parametrize("key,value,message", [
    ("ttlSeconds", 40 * 24 * 3600, "pgtiers:database.ttlSeconds: 3456000 is above the maximum 2592000"),
    ("minCu", 2, "pgtiers:database.minCu: 2 is above maxCu (1)"),
    ("projectId", "Not An Id", "pgtiers:database.projectId: 'Not An Id' is not a Neon project id"),
    ("suspendTimeoutSeconds", 30, "pgtiers:database.suspendTimeoutSeconds: 30 must be -1 (never), 0"),
])
def test_bad_neon_settings_are_one_line(key, value, message):
    config = stack_config("ci")
    database = json.loads(config["pgtiers:database"])
    database[key] = value
    config["pgtiers:database"] = json.dumps(database)
    with pytest.raises(ConfigError) as caught:
        evaluate("ci", config=config)
    assert str(caught.value).startswith(message), str(caught.value)
