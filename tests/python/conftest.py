"""Loads python/nemesyst_adapter.py by path for tests/python/test_adapter.py, as the runner does (no package, no
install): NEMESYST_PYTHON_ADAPTER names it (tests/python/pytest.sh sets the source tree's), else the copy beside
this tree's tests. Every test starts with no NEMESYST_* variable set."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ADAPTER = Path(os.environ.get("NEMESYST_PYTHON_ADAPTER")
               or Path(__file__).resolve().parents[2] / "python" / "nemesyst_adapter.py")


def _load():
    spec = importlib.util.spec_from_file_location("nemesyst_adapter", ADAPTER)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the adapter from {ADAPTER}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nemesyst_adapter"] = module
    spec.loader.exec_module(module)
    return module


_load()


@pytest.fixture(autouse=True)
def _no_nemesyst_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("NEMESYST_"):
            monkeypatch.delenv(name)
