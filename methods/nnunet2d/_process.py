"""Starts the nnU-Net worker process with the fit's own nnU-Net locations, logs it and follows its progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._layout import NnUNetFolders

WORKER_MODULE = "msbench.methods.nnunet2d._worker"
STAGE_MARKER = "MSBENCH_STAGE "
"""Prefix of the line the worker prints when a stage starts."""
EPOCH_MARKER = "MSBENCH_EPOCH "
"""Prefix of the one-line JSON record the trainer prints after each epoch."""
LOG_TAIL_LINES = 40


def augmentation_workers(device: str) -> int:
    """nnU-Net's data-augmentation processes for training: none on CPU (a seeded run reproduces), up to 12 on CUDA."""
    return min(12, os.cpu_count() or 1) if device.startswith("cuda") else 0


def torch_threads(device: str) -> int:
    """The worker's torch threads: the engine's :func:`default_threads` (the parent waits while the worker runs).

    Imported here, not at module level, so that the parent's adapter stays torch-free until it predicts.
    """
    from ..engine.loop import default_threads  # torch: on use, in the child process

    return default_threads(device)


def worker_environment(folders: NnUNetFolders, device: str) -> tuple[dict[str, str], str]:
    """The worker's environment (nnU-Net locations inside the run, worker counts, no compile) and its device name.

    The parent's ``os.environ`` is copied, never changed. ``cuda:N`` becomes ``CUDA_VISIBLE_DEVICES=N`` and ``cuda``
    because nnU-Net's trainer always takes CUDA device 0.
    """
    env = dict(os.environ)
    env.update(folders.environment())
    env.pop("nnUNet_extTrainer", None)
    cores = os.cpu_count() or 1
    env.update(
        {
            "nnUNet_compile": "false",
            # The planner sets torch's thread count to this, so it must be >= 1; training uses augmentation_workers.
            "nnUNet_n_proc_DA": "1",
            "nnUNet_def_n_proc": str(max(1, min(8, cores // 2))),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if device.startswith("cuda:"):
        env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        device = "cuda"
    return env, device


def run_worker(
    folders: NnUNetFolders,
    settings: Mapping[str, Any],
    env: Mapping[str, str],
    log_path: Path,
    progress: bool,
) -> list[dict]:
    """Runs the worker to completion, streaming its output into ``log_path``.

    Returns:
        The per-epoch records the trainer printed.

    Raises:
        RuntimeError: The worker failed; the message names the stage, the log file and its last lines.
    """
    from tqdm.auto import tqdm

    settings_path = folders.root / "msbench_settings.json"
    settings_path.write_text(json.dumps(settings, indent=1))
    command = [sys.executable, "-m", WORKER_MODULE, str(settings_path)]
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    epochs: list[dict] = []
    stage = "start"
    bar = tqdm(total=int(settings["epochs"]), desc="nnunet2d", unit="epoch", disable=not progress, leave=False)
    with (
        open(log_path, "w", buffering=1) as log,
        bar,
        subprocess.Popen(
            command,
            cwd=folders.root,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=_die_with_parent,
        ) as worker,
    ):
        assert worker.stdout is not None
        for line in worker.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            if line.startswith(STAGE_MARKER):
                stage = line[len(STAGE_MARKER) :].strip()
                bar.set_postfix_str(stage)
            elif line.startswith(EPOCH_MARKER):
                record = json.loads(line[len(EPOCH_MARKER) :])
                epochs.append(record)
                bar.update(1)
                bar.set_postfix_str(f"train_loss {record.get('train_loss')}")
        returncode = worker.wait()
    if returncode != 0:
        raise RuntimeError(
            f"nnU-Net worker failed during stage {stage!r} (exit code {returncode}); full log: {log_path}\n"
            + "\n".join(tail)
        )
    return epochs


def _die_with_parent() -> None:
    """On Linux the worker gets SIGKILL when msbench dies (``kill -9`` too); elsewhere this does nothing.

    So no orphaned worker trains on into a job folder that a rerun resumes.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1  # noqa: N806 - the kernel's name
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
