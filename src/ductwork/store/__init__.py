"""Stores: the source of truth. Chosen by URL in `ductwork.app`."""

from ductwork.store.base import (
    DuplicateRun,
    LeaseLost,
    PartialCheckpoint,
    Store,
    StoreError,
    UnstorableValue,
)

__all__ = [
    "DuplicateRun",
    "LeaseLost",
    "PartialCheckpoint",
    "Store",
    "StoreError",
    "UnstorableValue",
]
