"""Fixtures shared by the integration tests."""

from tests.support.cli import network_dir

__all__ = ["network_dir"]
