"""SEED.md's "Manual API Testing" workflow body, verbatim: the contract clients rely on."""

from __future__ import annotations

from typing import Any

SEED_BODY: dict[str, Any] = {
    "name": "Test Workflow",
    "nodes": [
        {"id": "start", "type": "start", "config": {}, "position": {"x": 0, "y": 0}},
        {
            "id": "ai1",
            "type": "ai-processor",
            "config": {"prompt": "Say hello"},
            "position": {"x": 200, "y": 0},
        },
        {"id": "end", "type": "end", "config": {}, "position": {"x": 400, "y": 0}},
    ],
    "edges": [{"from": "start", "to": "ai1"}, {"from": "ai1", "to": "end"}],
    "variables": [],
    "status": "active",
    "metadata": {"description": "Test", "author": "Me", "version": "1.0"},
}
