"""Optuna tuning on equal budgets, on validation patients only, shared safely by several worker processes.

One study per (method, dataset, protocol, budget), named ``method__dataset__protocol__budget``. Every method gets
the same number of trials (the budget's ``tuning_trials`` unless ``trials`` says otherwise) and the same per-trial
budget (the budget's recipe of the card: epochs, steps, batch size). A trial fits the method with the sampled
parameters on the training patients of one outer fold (the budget's first, or ``fold``) and its value is the metric
suite's ``dice`` on that fold's validation patient (mean over its scans, both-empty scans left out), the criterion of
:mod:`.recipe_selection`. Only those cases are handed to the fit; the fold's test cases are never opened.
A study tunes one fold because in a K-fold protocol every other fold's training patients include this fold's test
patient: ``msbench run --tuned`` therefore refuses folds whose test patients the study saw.

Sampler: ``TPESampler`` seeded from the study's seed and the trial number (``n_startup_trials`` a third of the
budget, at most 10), so that a single worker replays the same trials. Pruner (default): ``MedianPruner`` with
``n_startup_trials`` a quarter of the budget (1 to 5) and no warm-up: after each epoch the engine's validation Dice
is reported, and a trial below the median of the earlier trials at that epoch stops (never after its last epoch,
where stopping saves nothing). Methods without epochs (``threshold``) report nothing and are never pruned.

Counting (resume and several workers): the budget counts every trial of the study except those marked
``not_counted`` (a killed worker's trial, an interrupted one, a surplus one). COMPLETE, PRUNED and FAIL trials count
(a failed trial spent the method's budget), and so do RUNNING trials of live workers. A RUNNING trial whose worker is
gone (its process on this host no longer exists, or its heartbeat, refreshed every minute, is 10 minutes old: a worker
on another machine) is marked FAIL and ``not_counted`` before each new trial: it stays in the study, blocks nothing, and
a new trial takes its place. With the default journal storage a file lock makes "count, then ask" atomic between
local workers; on other storages a trial asked beyond the budget by a race is marked ``not_counted`` (``surplus``)
and not run. Rerunning ``msbench tune`` adds only the missing trials.

Storage: by default ``RESULTS/tuning/optuna-journal.log`` (Optuna's ``JournalStorage`` with ``JournalFileBackend``,
the backend Optuna documents for several processes on one machine; SQLite breaks under parallel writers, optuna issue
4002); any SQLAlchemy URL (``postgresql://user@host/db`` for several machines) or another journal file path otherwise.

The package's modules follow the seams: ``storage`` (where studies live), ``space`` (search space, sampler,
pruner), ``request`` (what a call asks for, the fold's cases, the study's record), ``workers`` (counting, heartbeats,
stale trials), ``trial`` (one fit and score), ``study`` (the loop), ``records`` (the index rows) and ``tuned`` (the
best parameters for ``msbench run --tuned``). Recipe selection, the ``--candidates`` mode of ``msbench tune``, is
:mod:`msbench.benchmark.recipe_selection`.
"""

from __future__ import annotations

from .records import index_journal, study_row, trial_rows
from .request import STUDY_VERSION, TrialEvent, TuneOutcome, TuneRequest, fold_data, study_attrs, study_name
from .space import describe, distributions, make_pruner, make_sampler, search_space_json
from .storage import JOURNAL_NAME, TUNING_DIR, default_storage, display_storage, is_url, open_storage
from .study import IDENTITY_KEYS, tune
from .tuned import TunedParams, load_tuned, tune_command
from .workers import HEARTBEAT_S, NOT_COUNTED, STALE_AFTER_S, counted, reap_stale

__all__ = [
    "HEARTBEAT_S",
    "IDENTITY_KEYS",
    "JOURNAL_NAME",
    "NOT_COUNTED",
    "STALE_AFTER_S",
    "STUDY_VERSION",
    "TUNING_DIR",
    "TrialEvent",
    "TuneOutcome",
    "TuneRequest",
    "TunedParams",
    "counted",
    "default_storage",
    "describe",
    "display_storage",
    "distributions",
    "fold_data",
    "index_journal",
    "is_url",
    "load_tuned",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "reap_stale",
    "search_space_json",
    "study_attrs",
    "study_name",
    "study_row",
    "trial_rows",
    "tune",
    "tune_command",
]
