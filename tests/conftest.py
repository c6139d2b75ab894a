"""Shared pytest configuration: the fixture plugins every test directory may use."""

pytest_plugins = [
    "tests.fixtures.cluster",
]
