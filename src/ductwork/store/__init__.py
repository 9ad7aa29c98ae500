"""Stores: the source of truth. Chosen by URL in `ductwork.app`."""

from ductwork.store.base import DuplicateRun, LeaseLost, Store, StoreError

__all__ = ["DuplicateRun", "LeaseLost", "Store", "StoreError"]
