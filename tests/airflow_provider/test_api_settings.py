"""Where token persistence finds its Airflow REST credentials (AirflowApiSettings.resolve)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aps_mirror.airflow_provider.token_persistence.writers import PASSWORD_FILE_ENV, AirflowApiSettings
from aps_mirror.errors import ConfigError


@pytest.fixture(autouse=True)
def no_api_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("APS_MIRROR_AIRFLOW_API_URL", "APS_MIRROR_AIRFLOW_API_USERNAME",
                "APS_MIRROR_AIRFLOW_API_PASSWORD", PASSWORD_FILE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("APS_MIRROR_AIRFLOW_API_URL", "http://airflow-apiserver:8080/")
    monkeypatch.setenv("APS_MIRROR_AIRFLOW_API_USERNAME", "aps_mirror")


def test_the_password_is_read_from_the_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "aps_mirror_airflow_api_password"
    secret.write_text("s3cret-from-file\n")  # as airflow-init (or a Docker secret) writes it
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(secret))
    settings = AirflowApiSettings.resolve()
    assert (settings.url, settings.username, settings.password) == (
        "http://airflow-apiserver:8080", "aps_mirror", "s3cret-from-file")
    assert "s3cret" not in repr(settings)


def test_a_password_in_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APS_MIRROR_AIRFLOW_API_PASSWORD", "from-env")
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "never-read"))
    assert AirflowApiSettings.resolve().password == "from-env"


@pytest.mark.parametrize("content", [None, "  \n"], ids=["missing", "empty"])
def test_an_unusable_password_file_is_one_line_saying_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None) -> None:
    secret = tmp_path / "aps_mirror_airflow_api_password"
    if content is not None:
        secret.write_text(content)
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(secret))
    with pytest.raises(ConfigError) as raised:
        AirflowApiSettings.resolve()
    message = str(raised.value)
    assert "\n" not in message and PASSWORD_FILE_ENV in message and str(secret) in message
    assert ("cannot be read" in message and "airflow-init" in message) if content is None else "is empty" in message
