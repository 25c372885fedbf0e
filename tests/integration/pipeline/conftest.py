"""Fixtures of the pipeline tests."""

from __future__ import annotations

import pytest

from vodflow import pipeline


@pytest.fixture
def services(airflow_env) -> pipeline.Services:
    return pipeline.Services.load()
