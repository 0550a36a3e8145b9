"""What a method costs: parameters, FLOPs, peak memory, training throughput and whole-volume inference latency.

Every figure goes through the method's own adapter: its network (:meth:`Adapter.profile_network`), its own
training batches (sampler and augmentation) at its patch or slice size and batch size, its own loss and optimiser,
and its own :meth:`Adapter.predict` (sliding window, slice stacks, resampling, nnU-Net's predictor) for latency.

How each number is measured:

* Parameters: ``numel`` of each distinct parameter tensor, all and those with ``requires_grad``.
* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` around one forward pass of one training batch (batch size
  samples); it counts a multiply-add as 2 FLOPs for convolutions and matrix products and ignores element-wise ops.
* Peak memory, always the peak during the phase above what was in use when it began (training: from building the
  network to the last measured step, so weights, gradients, optimiser state and activations; inference: the
  prediction calls, with the model already loaded). On CUDA (``memory_kind`` ``cuda-allocator``) it comes from the
  caching allocator's counters, ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, less the
  allocated bytes at the start; NVML's per-process figure is added where ``pynvml`` imports. On CPU (``cpu-rss``)
  it is the process's resident-set high-water mark, Linux's ``VmHWM`` in ``/proc/self/status``: glibc returns its
  free heap to the system (``malloc_trim(0)``), ``echo 5 > /proc/self/clear_refs`` resets the high-water mark to
  the current resident set, and the figure is ``VmHWM`` after the phase less ``VmRSS`` at its start. Without
  ``clear_refs`` (not Linux) CPU memory is not reported.
* Training throughput: ``warmup`` steps, then ``steps`` timed steps (batch from the method's pipeline, forward,
  loss, backward, optimiser step; CUDA synchronised before each clock read); samples and voxels (of the targets:
  the voxels segmented) per second.
* Latency: ``predict`` of one whole case after ``latency_warmup`` untimed calls, p50 and p95 over ``repeats``
  calls, and volumes per hour from the median. It includes reading the case's files and the method's pre- and
  post-processing, as a user's prediction does.
"""

from ..store.index import PROFILE_FILE
from .measure import (
    PROFILE_SHAPE,
    PROFILE_VERSION,
    PeakMemory,
    ProfileSettings,
    environment,
    forward_flops,
    measure_latency,
    measure_training,
    memory_kind,
    parameter_counts,
    peak_memory,
    reset_rss_peak,
    settings_for,
)
from .record import profile_adapter, profile_job_adapter
from .standalone import default_spacing, new_profile_id, profile_case, profile_method, store_profile

__all__ = [
    "PROFILE_FILE",
    "PROFILE_SHAPE",
    "PROFILE_VERSION",
    "PeakMemory",
    "ProfileSettings",
    "default_spacing",
    "environment",
    "forward_flops",
    "measure_latency",
    "measure_training",
    "memory_kind",
    "new_profile_id",
    "parameter_counts",
    "peak_memory",
    "profile_adapter",
    "profile_case",
    "profile_job_adapter",
    "profile_method",
    "reset_rss_peak",
    "settings_for",
    "store_profile",
]
