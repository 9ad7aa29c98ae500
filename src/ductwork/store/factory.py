"""Choose a store from its URL alone."""

from __future__ import annotations

from ductwork.store.base import Store

_SQL_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "postgresql+asyncpg"})
_MONGO_SCHEMES = frozenset({"mongodb", "mongodb+srv"})


def create_store(url: str) -> Store:
    """A store for `url`, not yet started.

    `sqlite:///path/to/file.db` (SQLite, embedded), `postgresql://...` (also
    `postgres://` and `postgresql+asyncpg://`), `mongodb://...` or
    `mongodb+srv://...`. Raises ValueError for any other scheme.
    """
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if not separator or not scheme:
        raise ValueError(f"not a store URL (scheme://...): {url!r}")
    # Imported on demand: a process using one kind of store need not load the other.
    if scheme in _SQL_SCHEMES:
        from ductwork.store.sql import SqlStore

        return SqlStore(url)
    if scheme in _MONGO_SCHEMES:
        from ductwork.store.mongo import MongoStore

        return MongoStore(url)
    known = ", ".join(sorted(_SQL_SCHEMES | _MONGO_SCHEMES))
    raise ValueError(f"unknown store URL scheme {scheme!r} in {url!r}; use one of: {known}")
