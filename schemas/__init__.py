"""Pydantic v2 models for everything that crosses a boundary (HTTP, queue, artifacts, results).

Imports only pydantic and the standard library, so every layer can depend on it.
"""
