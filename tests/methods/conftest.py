"""Fixtures shared by the method tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny networks run fastest on one thread, and on a busy 2-core CI machine two threads spin.

    ``MSBENCH_NUM_THREADS=1`` reaches the engine's fits and predictions, which set their own thread count.
    """
    monkeypatch.setenv("MSBENCH_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
