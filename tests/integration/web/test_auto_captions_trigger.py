"""Automatic captions refused at trigger (400, before any run) when this installation cannot make them: Airflow's
trigger endpoint behind the conf guard, with the real auth manager and the model directory the setting names."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from vodflow.settings import load_settings

from .test_conf_guard import GOOD, airflow, auth_manager, post, token  # noqa: F401 (auth_manager: a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def model_setting(monkeypatch):
    def use(path: str) -> None:
        monkeypatch.setenv("AIRFLOW__VODFLOW__CAPTIONS_MODEL", path)
        load_settings.cache_clear()

    yield use
    monkeypatch.delenv("AIRFLOW__VODFLOW__CAPTIONS_MODEL", raising=False)
    load_settings.cache_clear()


@pytest.mark.parametrize("auto_captions,model,answer", [
    (True, "", 200),  # the bundled tiny.en
    ({"language": "en"}, "", 200),
    (False, "/no/such/model", 200),  # not asked for: nothing to check
    (True, "/no/such/model", 400),  # asked for, and no model there
    ({"language": "fr"}, "", 400),  # an English-only model cannot hear French
    ({"language": "French"}, "", 400),  # not an ISO 639-1 code (the schema)
    ({"model": "/etc"}, "", 400),  # a request never names a model directory
    ("yes", "", 400),
])
def test_auto_captions_this_installation_cannot_make_are_refused_at_trigger(auth_manager, model_setting,  # noqa: F811
                                                                         auto_captions, model, answer):
    model_setting(model)
    app, triggered = airflow()
    response = post(TestClient(app), {**GOOD, "auto_captions": auto_captions},
                    headers={"Authorization": f"Bearer {token(auth_manager, 'admin')}"})
    assert response.status_code == answer, response.text
    if answer == 400:
        assert response.json()["detail"].startswith("auto_captions") and not triggered
