"""Where `Settings` reads from: arguments, then the environment, then a .env file when one
is named (`Settings(_env_file=...)`); none is by default, and then that source is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import DotEnvSettingsSource

from ductwork.settings import Settings


def test_without_a_dotenv_file_the_dotenv_source_is_not_consulted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It walked every field for nothing (~40 % of building Settings at each cold start).
    def consulted(*_: object) -> dict[str, object]:
        raise AssertionError("the .env source was consulted without a file")

    monkeypatch.setattr(DotEnvSettingsSource, "__call__", consulted)
    monkeypatch.setenv("DUCTWORK_REDIS_NAMESPACE", "from-env")
    assert Settings().redis_namespace == "from-env"
    assert Settings(redis_namespace="given").redis_namespace == "given"


def test_a_named_dotenv_file_is_read_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DUCTWORK_REDIS_NAMESPACE=from-file\nDUCTWORK_LEASE_SECONDS=99\n")
    monkeypatch.delenv("DUCTWORK_REDIS_NAMESPACE", raising=False)
    monkeypatch.setenv("DUCTWORK_LEASE_SECONDS", "60")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.redis_namespace == "from-file"
    assert settings.lease_seconds == 60  # the environment wins over the file
    monkeypatch.chdir(tmp_path)
    assert Settings().redis_namespace == "ductwork"  # no file named: ./.env is not read
