"""The metric suite's voxel loops, compiled with numba: labelling, label joins, and the nearest-boundary searches.

Each replaced a dense or per-offset numpy pass that dominated the suite's time on a real lesion mask (a crop of
about 2 million voxels holding some 30 000 lesion voxels): a cc3d labelling reads every voxel of the crop, these
loops read only the foreground voxels and their neighbours. ``tests/perf/test_metrics_speed.py`` measures each
against the pass it replaced, in the same run; ``tests/metrics`` checks them against scipy, medpy and a KD-tree.

Every loop works on C-order flat indices into a crop with a background margin of at least one voxel (at least the
search radius for :func:`nearest_in_ball`), so ``v + offset`` never wraps around an edge; a neighbour's place among
the foreground voxels is read from the mask's node image (:func:`node_image`, made once per mask and case).
Compiled once per machine (``cache=True`` keeps the machine code next to this file, or in numba's user cache where
that is read-only).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _root(parent: np.ndarray, node: int) -> int:
    """Root of ``node`` in a union-find forest (path halving)."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def label_nodes(mask: np.ndarray, node: np.ndarray, fg: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a mask's foreground, numbered as cc3d numbers them.

    Args:
        mask: The flat mask as uint8 (read first: a quarter of the node image's bytes, so fewer cache misses).
        node: The mask's flat node image (:func:`node_image`).
        fg: Sorted flat indices of the foreground voxels.
        steps: The forward half of the connectivity's neighbour steps as flat offsets; ``v - step`` is a
            neighbour that comes before ``v`` in memory order.

    Returns:
        (label 1..n of each voxel of ``fg``, n). Labels follow the memory order of each component's first
        voxel, as cc3d's raster scan gives them: every root is its component's lowest voxel.
    """
    n = fg.size
    parent = np.empty(n, np.int32)
    for a in range(n):
        root_a = a
        parent[a] = a
        v = fg[a]
        for step in steps:
            if not mask[v - step]:
                continue
            root_b = _root(parent, node[v - step] - 1)
            if root_b < root_a:
                parent[root_a] = root_b
                root_a = root_b
            elif root_a < root_b:
                parent[root_b] = root_a
    labels = np.empty(n, np.int32)
    count = 0
    for a in range(n):
        if parent[a] == a:
            count += 1
            labels[a] = count
        else:
            labels[a] = labels[_root(parent, a)]  # the root is lower, so already labelled
    return labels, count


@numba.njit(cache=True, nogil=True)
def join_labels(
    mask: np.ndarray, node: np.ndarray, labels: np.ndarray, n: int, boundary: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """Components of a coarser connectivity from the labels of a finer one.

    Only pairs of boundary voxels can join two finer components (if one end of a touching pair were interior, its
    face neighbour towards the other end would form a shorter pair in the same component), so the extra steps are
    tried forward from the boundary voxels only.

    Args:
        mask: The flat mask as uint8.
        node: The mask's flat node image (:func:`node_image`).
        labels: The finer labels 1..n of each foreground voxel (:func:`label_nodes`).
        n: Their number.
        boundary: Flat indices of the mask's boundary voxels.
        steps: Flat offsets of the steps the coarser connectivity adds, forward half only.

    Returns:
        Finer label -> coarser component 1..n' (index 0 stays 0), numbered by each component's lowest finer
        label, which is the number a labelling at the coarser connectivity gives it.
    """
    parent = np.arange(n + 1).astype(np.int32)
    for v in boundary:
        label_a = labels[node[v] - 1]
        for step in steps:
            if not mask[v + step]:
                continue
            label_b = labels[node[v + step] - 1]
            if label_b == label_a:
                continue
            root_a, root_b = _root(parent, label_a), _root(parent, label_b)
            if root_a < root_b:
                parent[root_b] = root_a
            elif root_b < root_a:
                parent[root_a] = root_b
    component = np.zeros(n + 1, np.int32)
    count = 0
    for a in range(1, n + 1):
        if parent[a] == a:
            count += 1
            component[a] = count
        else:
            component[a] = component[_root(parent, a)]
    return component


@numba.njit(cache=True, nogil=True)
def nearest_in_ball(points: np.ndarray, target: np.ndarray, offsets: np.ndarray, offset_mm: np.ndarray) -> np.ndarray:
    """Distance in mm from each flat index in ``points`` to the nearest ``target`` voxel within the ball.

    ``offsets`` (flat) and ``offset_mm`` list the ball's voxels nearest first; a point with no target voxel in the
    ball gets ``inf``.
    """
    out = np.full(points.size, np.inf)
    for p in range(points.size):
        v = points[p]
        for q in range(offsets.size):
            if target[v + offsets[q]]:
                out[p] = offset_mm[q]
                break
    return out


def node_image(size: int, fg: np.ndarray) -> np.ndarray:
    """A mask's flat int32 node image: 1 + the voxel's position in ``fg`` on the foreground, 0 elsewhere."""
    node = np.zeros(size, dtype=np.int32)
    node[fg] = np.arange(1, fg.size + 1, dtype=np.int32)
    return node


@numba.njit(cache=True, nogil=True)
def nearest_on_grid(
    points: np.ndarray, targets: np.ndarray, shape: np.ndarray, spacing_mm: np.ndarray, cell: int
) -> np.ndarray:
    """Exact distance in mm from each flat index in ``points`` to the nearest flat index in ``targets``.

    The targets are bucketed into cubes of ``cell`` voxels; each point visits the cubes ring by ring around its
    own and stops once the next ring cannot hold anything nearer than the best so far. Same squared distances as
    a KD-tree over the targets' positions in mm (summed x, y, z in that order) and the same square root, without
    building a tree (a counting sort) for the few points the local search left.
    """
    n_i, n_j, n_k = shape[0], shape[1], shape[2]
    g_i, g_j, g_k = (n_i + cell - 1) // cell, (n_j + cell - 1) // cell, (n_k + cell - 1) // cell
    start = np.zeros(g_i * g_j * g_k + 1, np.int64)
    bucket = np.empty(targets.size, np.int64)
    for t in range(targets.size):
        v = targets[t]
        bucket[t] = ((v // (n_j * n_k) // cell) * g_j + (v // n_k) % n_j // cell) * g_k + v % n_k // cell
        start[bucket[t] + 1] += 1
    for c in range(g_i * g_j * g_k):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    xyz = np.empty((targets.size, 3))
    for t in range(targets.size):
        v, slot = targets[t], fill[bucket[t]]
        fill[bucket[t]] += 1
        xyz[slot, 0] = (v // (n_j * n_k)) * spacing_mm[0]
        xyz[slot, 1] = ((v // n_k) % n_j) * spacing_mm[1]
        xyz[slot, 2] = (v % n_k) * spacing_mm[2]
    finest = min(spacing_mm[0], min(spacing_mm[1], spacing_mm[2]))
    out = np.empty(points.size)
    for p in range(points.size):
        v = points[p]
        i, j, k = v // (n_j * n_k), (v // n_k) % n_j, v % n_k
        x, y, z = i * spacing_mm[0], j * spacing_mm[1], k * spacing_mm[2]
        c_i, c_j, c_k = i // cell, j // cell, k // cell
        best = np.inf
        ring = 0
        while ring <= max(g_i, max(g_j, g_k)):
            # Every voxel of a cube `ring` cubes away lies at least (ring - 1) * cell + 1 voxels away on some axis.
            # (The margin keeps a rounding ulp from hiding an equally near target.)
            nearest_possible = ((ring - 1) * cell + 1) * finest
            if ring > 0 and nearest_possible * nearest_possible * (1 - 1e-9) > best:
                break
            for a in range(max(c_i - ring, 0), min(c_i + ring, g_i - 1) + 1):
                for b in range(max(c_j - ring, 0), min(c_j + ring, g_j - 1) + 1):
                    on_edge = abs(a - c_i) == ring or abs(b - c_j) == ring
                    c = max(c_k - ring, 0)
                    while c <= min(c_k + ring, g_k - 1):
                        if on_edge or abs(c - c_k) == ring:
                            cube = (a * g_j + b) * g_k + c
                            for t in range(start[cube], start[cube + 1]):
                                dx, dy, dz = xyz[t, 0] - x, xyz[t, 1] - y, xyz[t, 2] - z
                                squared = dx * dx + dy * dy + dz * dz
                                if squared < best:
                                    best = squared
                        # inside the ring only its two k faces hold new cubes
                        c = c + 1 if on_edge or c >= c_k + ring else c_k + ring
            ring += 1
        out[p] = np.sqrt(best)
    return out
