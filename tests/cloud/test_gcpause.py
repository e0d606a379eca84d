"""The cyclic collector pause shared by ingestion batches and scoring rounds."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from cloud.gcpause import paused_cyclic_gc


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_resumed_after() -> None:
    gc.enable()
    with paused_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_stays_paused_until_the_last_thread_leaves() -> None:
    gc.enable()
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[bool] = []

    def batch() -> None:
        with paused_cyclic_gc():
            first_in.set()
            second_out.wait(5)
            seen.append(gc.isenabled())  # the other thread has left: still paused here

    t = threading.Thread(target=batch)
    t.start()
    assert first_in.wait(5)
    with paused_cyclic_gc():
        assert not gc.isenabled()
    second_out.set()
    t.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    gc.disable()
    with paused_cyclic_gc():
        pass
    assert not gc.isenabled()


def test_resumed_when_the_work_raises() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused_cyclic_gc():
        raise RuntimeError("bad batch")
    assert gc.isenabled()
