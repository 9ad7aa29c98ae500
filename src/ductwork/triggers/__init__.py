"""What starts a run besides a person: schedules, inbound webhooks, resume links, error
workflows.

`spec.py` is the pure data a workflow declares (validated on save, exported as JSON
Schema by `GET /trigger-types`); the other modules act on it through the ports.
"""
