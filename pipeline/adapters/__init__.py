"""Adapters: the only modules that import vendor SDKs. Each implements a port from pipeline.ports."""
