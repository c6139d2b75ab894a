"""Shared pytest configuration: the fixture plugins every test directory may use."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.emulator",
    "tests.fixtures.operator",
]
