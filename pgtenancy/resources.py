"""Locate the SQL sources shipped with the package (in the wheel or in a source checkout)."""

from __future__ import annotations

from pathlib import Path


def sql_dir() -> Path:
    """The directory holding ``migrations/``, ``functions/`` and ``policies/``."""
    path = Path(__file__).resolve().parent / "sql"
    if not (path / "migrations").is_dir():
        raise FileNotFoundError(f"pgtenancy SQL sources not found at {path}")
    return path
