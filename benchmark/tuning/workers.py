"""Several workers on one study: which trials count against the budget, heartbeats, stale trials reaped."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from msbench.datasets.phantom.generate import pid_alive

if TYPE_CHECKING:
    import optuna


NOT_COUNTED = "not_counted"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that count against the budget (see the module docstring)."""
    from optuna.trial import TrialState

    return [t for t in trials if NOT_COUNTED not in t.user_attrs and t.state != TrialState.WAITING]


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reap_stale(study: optuna.Study, now: float | None = None) -> list[int]:
    """Fails the RUNNING trials whose worker is gone; returns their numbers.

    A worker is gone when it ran on this host and its process no longer exists, or when its trial's heartbeat (a
    user attribute it refreshes every ``HEARTBEAT_S`` seconds) is older than ``STALE_AFTER_S`` (other machines).
    """
    import optuna
    from optuna.trial import TrialState

    host, now, reaped = socket.gethostname(), now or time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("worker", ""))
        owner, _, pid = worker.rpartition(":")
        beat = float(trial.user_attrs.get("heartbeat", now))
        if owner == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            reason = f"stale: worker {worker} is gone"
        elif now - beat > STALE_AFTER_S:
            reason = f"stale: no heartbeat from worker {worker} for {now - beat:.0f} s"
        else:
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, NOT_COUNTED, reason)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        reaped.append(trial.number)
    return reaped


@contextmanager
def _heartbeat(trial: optuna.Trial) -> Iterator[None]:
    """Refreshes the trial's ``heartbeat`` attribute every ``HEARTBEAT_S`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            trial.set_user_attr("heartbeat", time.time())

    thread = threading.Thread(target=beat, name=f"msbench-tune-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None
