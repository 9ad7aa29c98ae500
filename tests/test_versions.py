"""The diff of two workflow versions (`ductwork.versions`, a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ductwork.models import WorkflowDefinition
from ductwork.versions import diff_definitions, version_info


def definition(**changes: Any) -> WorkflowDefinition:
    body: dict[str, Any] = {
        "name": "Support triage",
        "nodes": [
            {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
            {
                "id": "ai1",
                "type": "ai-processor",
                "config": {"prompt": "Classify {{ticket}}", "model": "a"},
                "position": {"x": 200, "y": 0},
            },
            {"id": "route", "type": "condition", "config": {"expression": "urgent"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "ai1"},
            {"from": "ai1", "to": "route"},
            {"from": "route", "to": "end", "branch": "true"},
        ],
        "variables": {"team": "support"},
    }
    body.update(changes)
    return WorkflowDefinition.model_validate(body)


def diff(old: WorkflowDefinition, new: WorkflowDefinition) -> dict[str, Any]:
    return diff_definitions(old, new, from_version=1, to_version=2)


def test_identical_versions_have_no_changes() -> None:
    assert diff(definition(), definition()) == {
        "from": 1,
        "to": 2,
        "nodes": {"added": [], "removed": [], "changed": []},
        "edges": {"added": [], "removed": []},
        "workflow": [],
    }


def test_nodes_by_id_with_changes_by_path() -> None:
    old = definition()
    body = old.dump()
    ai1 = body["nodes"][1]
    ai1["config"]["prompt"] = "Triage {{ticket}}"
    del ai1["config"]["model"]
    ai1["config"]["temperature"] = 0.2
    ai1["position"]["x"] = 240
    ai1["retry"] = {"max_attempts": 3}
    body["nodes"] = [node for node in body["nodes"] if node["id"] != "route"]
    body["nodes"].append({"id": "mail", "type": "email", "config": {"to": "a@b.c"}})
    body["edges"] = [
        {"from": "start", "to": "ai1"},
        {"source": "ai1", "target": "mail", "id": "e9"},  # React Flow spelling
    ]

    result = diff(old, WorkflowDefinition.model_validate(body))

    assert result["nodes"]["added"] == ["mail"]
    assert result["nodes"]["removed"] == ["route"]
    changes = result["nodes"]["changed"]
    assert [change["id"] for change in changes] == ["ai1"]
    assert changes[0]["changes"] == [
        {"path": "config.prompt", "from": "Classify {{ticket}}", "to": "Triage {{ticket}}"},
        {"path": "config.model", "from": "a", "to": None},
        {"path": "config.temperature", "from": None, "to": 0.2},
        {"path": "position.x", "from": 200, "to": 240},
        {
            "path": "retry",
            "from": None,
            "to": {
                "max_attempts": 3,
                "backoff_seconds": 1.0,
                "backoff_factor": 2.0,
                "max_backoff_seconds": 300.0,
                "jitter": 0.5,
            },
        },
    ]
    assert result["edges"] == {
        "added": [{"from": "ai1", "to": "mail", "branch": None}],
        "removed": [
            {"from": "ai1", "to": "route", "branch": None},
            {"from": "route", "to": "end", "branch": "true"},
        ],
    }
    assert result["workflow"] == []


def test_edge_branch_is_part_of_its_identity() -> None:
    old = definition()
    body = old.dump()
    body["edges"][2]["branch"] = "false"

    result = diff(old, WorkflowDefinition.model_validate(body))

    assert result["edges"] == {
        "added": [{"from": "route", "to": "end", "branch": "false"}],
        "removed": [{"from": "route", "to": "end", "branch": "true"}],
    }


def test_workflow_fields_by_path() -> None:
    new = definition(
        name="Triage",
        variables={"team": "ops", "region": "eu"},
        settings={"retention": {"days": 7}},
        status="paused",
    )

    result = diff(definition(), new)

    assert result["workflow"] == [
        {"path": "name", "from": "Support triage", "to": "Triage"},
        {"path": "variables.team", "from": "support", "to": "ops"},
        {"path": "variables.region", "from": None, "to": "eu"},
        {"path": "status", "from": "active", "to": "paused"},
        {"path": "settings", "from": None, "to": {"retention": {"days": 7.0}}},
    ]
    # A list compares whole; 1 and 1.0 or 0 and False are different values.
    lists = diff(definition(variables=[1, 2]), definition(variables=[1, 2.0]))
    assert lists["workflow"] == [{"path": "variables", "from": [1, 2], "to": [1, 2.0]}]
    flags = diff(definition(metadata={"on": 0}), definition(metadata={"on": False}))
    assert flags["workflow"] == [{"path": "metadata.on", "from": 0, "to": False}]


def test_version_info_reads_a_stored_definition_without_validating_it() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    info = version_info(4, at, {"name": "old", "nodes": [{"id": "x", "type": "gone"}]})

    assert (info.version, info.created_at, info.name, info.node_count, info.edge_count) == (
        4,
        at,
        "old",
        1,
        0,
    )
