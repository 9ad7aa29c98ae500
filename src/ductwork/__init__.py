"""ductwork: a workflow execution engine for AI workflows."""

__version__ = "0.1.0"
