"""The node freezes what its main process holds before the pool forks (worker.sharing)."""

from __future__ import annotations

import gc

from celery import signals

import worker.main  # noqa: F401  (the composition root connects the hook)
from worker.sharing import freeze_before_fork


def test_the_composition_root_freezes_before_the_pool_forks() -> None:
    # Connected with weak=False, so the receivers are the functions themselves.
    assert freeze_before_fork in [receiver for _, receiver in signals.worker_init.receivers]


def test_freezing_moves_live_objects_out_of_every_later_collection() -> None:
    kept = [[i] for i in range(1000)]  # tracked objects alive at "fork" time
    try:
        freeze_before_fork()
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
