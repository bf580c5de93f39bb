"""Our components in forked processes: ``nlp.pipe(texts, n_process=2)`` (spaCy forks its workers on Linux).

A process forked after torch has used its intra-op thread pool (OpenMP) inherits a pool whose threads do not exist in
the child: the child's first parallel torch op waits for them forever (workers idle at 0% CPU). Importing the package
registers :func:`one_torch_thread` to run in every forked child, so that the child runs torch on one thread, as
spaCy's and torch's own worker processes do; the parent keeps its setting.
"""
import os
import sys

_registered = False


def one_torch_thread() -> None:
    """In a forked child: torch on one intra-op thread (never touches torch if the parent has not imported it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def register() -> None:
    """Run :func:`one_torch_thread` after every ``os.fork`` (once per process; called when the package is imported)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=one_torch_thread)
        _registered = True
