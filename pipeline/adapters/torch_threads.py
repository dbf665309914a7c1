"""Torch's CPU threads per process, set before the local models load.

Each prefork child runs the local models; torch's default (a thread per core in every child) makes
the children fight for the same cores, so one busy child slows the other's every call.
"""

from __future__ import annotations


def limit_torch_threads(threads: int) -> None:
    """Use `threads` intra-op threads in this process (torch imported here, on first use)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
