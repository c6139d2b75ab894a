"""Fixtures of the sidecar client tests: the emulator fixtures of ``tests.fixtures.emulator``."""

from tests.fixtures.emulator import emulator, emulator_key, emulator_setup_secret

__all__ = ["emulator", "emulator_key", "emulator_setup_secret"]
