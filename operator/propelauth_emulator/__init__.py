"""Emulator of the PropelAuth BYO sidecar for tests and the demo; never imported by the operator."""
