"""The schema of a new SQLite database, frozen as SQL text: what `metadata.create_all` emits.

`ductwork run` always starts on a new SQLite file (its scratch store). Creating the schema
through SQLAlchemy (an existence check per table, then compiling 34 DDL statements, the
first use of its DDL compiler) cost ~8-10 ms of CPU of that cold start; running the same
statements as text costs ~1.5 ms. `migrate` uses them only for a database with nothing in
it; every other database is created or upgraded as before.

tests/test_sqlite_schema.py fails when this text no longer matches `sql_schema`'s tables;
regenerate it with `PYTHONPATH=src python -m ductwork.store.sqlite_ddl` (prints the text).
"""

from __future__ import annotations

import re
import sys


def render() -> str:
    """The schema's DDL from the tables in `sql_schema`, as `SQLITE_SCHEMA` spells it:
    tables in dependency order (as `create_all` creates them), each followed by its
    indexes by name."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from ductwork.store.sql_schema import metadata

    dialect = sqlite.dialect()
    statements: list[str] = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)))
    # SQLAlchemy's layout ("col, \n\tcol"), with spaces for its tabs and no trailing blanks.
    tidy = (re.sub(r" *\n\t", "\n    ", statement).strip() for statement in statements)
    return "\n" + "".join(f"{statement};\n\n" for statement in tidy)


def statements() -> list[str]:
    """`SQLITE_SCHEMA`, one statement a string (sqlite3 runs one per execute)."""
    return [statement for statement in SQLITE_SCHEMA.split(";\n") if statement.strip()]


SQLITE_SCHEMA = """
CREATE TABLE api_keys (
    id VARCHAR(64) NOT NULL,
    name TEXT NOT NULL,
    role VARCHAR(16) NOT NULL,
    prefix VARCHAR(64) NOT NULL,
    key_hash VARCHAR(128) NOT NULL,
    owner_id VARCHAR(64),
    created_at DATETIME NOT NULL,
    expires_at DATETIME,
    last_used_at DATETIME,
    revoked_at DATETIME,
    parent_key_id VARCHAR(64),
    PRIMARY KEY (id)
);

CREATE INDEX ix_api_keys_created_at ON api_keys (created_at);

CREATE INDEX ix_api_keys_owner_id ON api_keys (owner_id);

CREATE UNIQUE INDEX ux_api_keys_prefix ON api_keys (prefix);

CREATE TABLE audit_log (
    id VARCHAR(64) NOT NULL,
    at DATETIME NOT NULL,
    actor VARCHAR(255) NOT NULL,
    actor_name TEXT NOT NULL,
    action VARCHAR(64) NOT NULL,
    target TEXT,
    outcome VARCHAR(16) NOT NULL,
    client VARCHAR(255),
    details JSON NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_audit_log_action ON audit_log (action, id);

CREATE INDEX ix_audit_log_actor ON audit_log (actor, id);

CREATE INDEX ix_audit_log_at ON audit_log (at);

CREATE TABLE credentials (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(200) NOT NULL,
    type VARCHAR(64) NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    created_by VARCHAR(255),
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ux_credentials_name ON credentials (name);

CREATE TABLE schema_version (
    id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE sessions (
    id VARCHAR(64) NOT NULL,
    token_hash VARCHAR(128) NOT NULL,
    user_id VARCHAR(64),
    key_id VARCHAR(64),
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_sessions_key_id ON sessions (key_id);

CREATE INDEX ix_sessions_user_id ON sessions (user_id);

CREATE UNIQUE INDEX ux_sessions_token_hash ON sessions (token_hash);

CREATE TABLE setup_token (
    id INTEGER NOT NULL,
    token_hash VARCHAR(128),
    PRIMARY KEY (id)
);

CREATE TABLE users (
    id VARCHAR(64) NOT NULL,
    email VARCHAR(320) NOT NULL,
    display_name TEXT NOT NULL,
    role VARCHAR(16) NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_users_created_at ON users (created_at);

CREATE UNIQUE INDEX ux_users_email ON users (email);

CREATE TABLE workflow_runs (
    execution_id VARCHAR(64) NOT NULL,
    workflow_id VARCHAR(64) NOT NULL,
    workflow_version INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    definition JSON NOT NULL,
    variables JSON NOT NULL,
    result JSON,
    error TEXT,
    created_at DATETIME NOT NULL,
    start_time DATETIME,
    end_time DATETIME,
    wake_at DATETIME,
    cancel_requested BOOLEAN NOT NULL,
    idempotency_key VARCHAR(255),
    lease_owner VARCHAR(255),
    lease_expires_at DATETIME,
    last_seq INTEGER NOT NULL,
    redrives INTEGER DEFAULT 0 NOT NULL,
    dead_letter BOOLEAN DEFAULT 0 NOT NULL,
    "trigger" JSON,
    error_workflow_pending BOOLEAN DEFAULT 0 NOT NULL,
    parent_execution_id VARCHAR(64),
    parent_node_id VARCHAR(200),
    depth INTEGER DEFAULT 0 NOT NULL,
    usage JSON,
    cost FLOAT DEFAULT 0 NOT NULL,
    queued_reason TEXT,
    admitted BOOLEAN DEFAULT 0 NOT NULL,
    PRIMARY KEY (execution_id)
);

CREATE INDEX ix_workflow_runs_created_at ON workflow_runs (created_at);

CREATE INDEX ix_workflow_runs_dead_letter ON workflow_runs (created_at) WHERE dead_letter;

CREATE INDEX ix_workflow_runs_error_workflow_pending ON workflow_runs (created_at) WHERE error_workflow_pending;

CREATE INDEX ix_workflow_runs_parent ON workflow_runs (parent_execution_id);

CREATE INDEX ix_workflow_runs_status ON workflow_runs (status, created_at);

CREATE INDEX ix_workflow_runs_workflow_id ON workflow_runs (workflow_id, created_at);

CREATE UNIQUE INDEX ux_workflow_runs_idempotency ON workflow_runs (workflow_id, idempotency_key);

CREATE TABLE workflows (
    id VARCHAR(64) NOT NULL,
    name VARCHAR(500) NOT NULL,
    version INTEGER NOT NULL,
    definition JSON NOT NULL,
    status VARCHAR(32) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_workflows_created_at ON workflows (created_at);

CREATE TABLE node_states (
    execution_id VARCHAR(64) NOT NULL,
    node_id VARCHAR(200) NOT NULL,
    status VARCHAR(16) NOT NULL,
    output JSON,
    error TEXT,
    cached BOOLEAN NOT NULL,
    latency_ms FLOAT,
    attempts INTEGER NOT NULL,
    started_at DATETIME,
    finished_at DATETIME,
    branch VARCHAR(200),
    wake_at DATETIME,
    meta JSON NOT NULL,
    PRIMARY KEY (execution_id, node_id),
    FOREIGN KEY(execution_id) REFERENCES workflow_runs (execution_id) ON DELETE CASCADE
);

CREATE TABLE run_events (
    execution_id VARCHAR(64) NOT NULL,
    seq INTEGER NOT NULL,
    type VARCHAR(32) NOT NULL,
    node_id VARCHAR(200),
    timestamp DATETIME NOT NULL,
    data JSON NOT NULL,
    PRIMARY KEY (execution_id, seq),
    FOREIGN KEY(execution_id) REFERENCES workflow_runs (execution_id) ON DELETE CASCADE
);

CREATE TABLE workflow_triggers (
    workflow_id VARCHAR(64) NOT NULL,
    type VARCHAR(32) NOT NULL,
    "key" VARCHAR(255) NOT NULL,
    PRIMARY KEY (type, "key"),
    FOREIGN KEY(workflow_id) REFERENCES workflows (id) ON DELETE CASCADE
);

CREATE INDEX ix_workflow_triggers_workflow_id ON workflow_triggers (workflow_id);

CREATE TABLE workflow_versions (
    workflow_id VARCHAR(64) NOT NULL,
    version INTEGER NOT NULL,
    definition JSON NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (workflow_id, version),
    FOREIGN KEY(workflow_id) REFERENCES workflows (id) ON DELETE CASCADE
);

"""  # noqa: E501


if __name__ == "__main__":
    sys.stdout.write(render())
