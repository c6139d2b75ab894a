"""Kubernetes operator that manages Experio's enterprise SSO through the PropelAuth BYO sidecar."""

__version__ = "0.1.0"
