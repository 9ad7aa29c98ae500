"""A SQL store database as schema version 1 left it, with one run in it, for upgrade tests.

The DDL is what `ductwork.store.sql.metadata` created at version 1 (rendered
by SQLAlchemy for each dialect), frozen here so the upgrade is tested against
the real old shape, not against today's tables.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import make_url

from tests.support.stores import postgres_execute

V1_RUN_ID = "run-from-v1"
V1_WORKFLOW_ID = "wf-v1"
V1_IDEMPOTENCY_KEY = "key-from-v1"

_DDL = """
CREATE TABLE schema_version (
    id {serial} NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (id)
);
CREATE TABLE workflow_runs (
    execution_id VARCHAR(64) NOT NULL,
    workflow_id VARCHAR(64) NOT NULL,
    workflow_version INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    definition {json} NOT NULL,
    variables {json} NOT NULL,
    result {json},
    error TEXT,
    created_at {time} NOT NULL,
    start_time {time},
    end_time {time},
    wake_at {time},
    cancel_requested BOOLEAN NOT NULL,
    idempotency_key VARCHAR(255),
    lease_owner VARCHAR(255),
    lease_expires_at {time},
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (execution_id),
    UNIQUE (idempotency_key)
);
CREATE INDEX ix_workflow_runs_status ON workflow_runs (status);
CREATE INDEX ix_workflow_runs_workflow_id ON workflow_runs (workflow_id, created_at);
CREATE TABLE workflows (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(500) NOT NULL,
    version INTEGER NOT NULL,
    definition {json} NOT NULL,
    status VARCHAR(32) NOT NULL,
    created_at {time} NOT NULL,
    updated_at {time} NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX ix_workflows_created_at ON workflows (created_at);
CREATE TABLE node_states (
    execution_id VARCHAR(64) NOT NULL,
    node_id VARCHAR(200) NOT NULL,
    status VARCHAR(16) NOT NULL,
    output {json},
    error TEXT,
    cached BOOLEAN NOT NULL,
    latency_ms FLOAT,
    attempts INTEGER NOT NULL,
    started_at {time},
    finished_at {time},
    branch VARCHAR(200),
    wake_at {time},
    meta {json} NOT NULL,
    PRIMARY KEY (execution_id, node_id),
    FOREIGN KEY(execution_id) REFERENCES workflow_runs (execution_id) ON DELETE CASCADE
);
CREATE TABLE run_events (
    execution_id VARCHAR(64) NOT NULL,
    seq INTEGER NOT NULL,
    type VARCHAR(32) NOT NULL,
    node_id VARCHAR(200),
    timestamp {time} NOT NULL,
    data {json} NOT NULL,
    PRIMARY KEY (execution_id, seq),
    FOREIGN KEY(execution_id) REFERENCES workflow_runs (execution_id) ON DELETE CASCADE
);
CREATE TABLE workflow_versions (
    workflow_id VARCHAR(64) NOT NULL,
    version INTEGER NOT NULL,
    definition {json} NOT NULL,
    created_at {time} NOT NULL,
    PRIMARY KEY (workflow_id, version),
    FOREIGN KEY(workflow_id) REFERENCES workflows (id) ON DELETE CASCADE
);
INSERT INTO schema_version (id, version) VALUES (1, 1);
INSERT INTO workflow_runs (
    execution_id, workflow_id, workflow_version, status, definition, variables,
    created_at, cancel_requested, idempotency_key, last_seq
) VALUES (
    '{run_id}', '{workflow_id}', 1, 'running',
    '{{"name": "old", "nodes": [], "edges": []}}', '{{"user": "Ada"}}',
    '2030-01-02 03:04:05', {false}, '{key}', 2
);
INSERT INTO node_states (execution_id, node_id, status, output, cached, attempts, meta)
VALUES ('{run_id}', 'start', 'completed', '{{"kept": true}}', {false}, 1, '{{}}');
INSERT INTO run_events (execution_id, seq, type, timestamp, data) VALUES
    ('{run_id}', 1, 'run_started', '2030-01-02 03:04:05', '{{}}'),
    ('{run_id}', 2, 'log', '2030-01-02 03:04:06', '{{"message": "kept"}}');
"""


def create_v1_database(kind: str, url: str) -> None:
    """Create the version 1 schema, with one run, at `url` ("sqlite" or "postgresql")."""
    values = {"run_id": V1_RUN_ID, "workflow_id": V1_WORKFLOW_ID, "key": V1_IDEMPOTENCY_KEY}
    if kind == "sqlite":
        script = _DDL.format(serial="INTEGER", json="JSON", time="DATETIME", false="0", **values)
        database = make_url(url).database
        assert database is not None
        connection = sqlite3.connect(database)
        try:
            connection.executescript(script)
        finally:
            connection.close()
    elif kind == "postgresql":
        script = _DDL.format(
            serial="SERIAL", json="JSONB", time="TIMESTAMP WITH TIME ZONE", false="false", **values
        )
        postgres_execute(url, script)
    else:
        raise ValueError(f"no version 1 schema for {kind!r}")
