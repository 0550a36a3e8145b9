"""The metric suite's voxel loops, compiled with numba: labelling, label joins, and the nearest-boundary searches.

Each replaced a dense or per-offset numpy pass that dominated the suite's time on a real lesion mask (a crop of
about 2 million voxels holding some 30 000 lesion voxels): a cc3d labelling reads every voxel of the crop, these
loops read only the foreground voxels and their neighbours. ``tests/perf/test_metrics_speed.py`` measures each
against the pass it replaced, in the same run; ``tests/metrics`` checks them against scipy, medpy and a KD-tree.

Every loop works on C-order flat indices into a crop with a background margin of at least one voxel (at least the
search radius for :func:`nearest_in_ball`), so ``v + offset`` never wraps around an edge; a neighbour's place among
the foreground voxels is read from the mask's :class:`Nodes` (made once per mask and case).
Compiled once per machine (``cache=True`` keeps the machine code next to this file, or in numba's user cache where
that is read-only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Nodes:
    """Where each foreground voxel of a flat mask sits among its sorted foreground indices ``fg``.

    Voxel ``v`` on row ``r`` (a line along the last axis, ``r = v // n_k``) is ``fg[start[r] + rank[v]]``. The rank
    image holds one byte per voxel where a row is at most 256 voxels long: a quarter of the bytes of an int32 image
    of positions, so it is written and read with a quarter of the cache misses.

    Attributes:
        mask: The flat mask as uint8.
        fg: Sorted flat indices of its foreground voxels.
        fg_row: Row of each voxel of ``fg``.
        start: Position in ``fg`` of each row's first foreground voxel (int32).
        rank: Flat image: a foreground voxel's position among its row's foreground voxels (0 elsewhere).
        n_k: Row length.
    """

    mask: np.ndarray
    fg: np.ndarray
    fg_row: np.ndarray
    start: np.ndarray
    rank: np.ndarray
    n_k: int

    @classmethod
    def of(cls, mask: np.ndarray, fg: np.ndarray) -> Nodes:
        """The nodes of a C-contiguous mask (any shape, last axis the row) with foreground indices ``fg``."""
        n_k = mask.shape[-1]
        fg_row = fg // n_k
        start = np.zeros(mask.size // n_k + 1, dtype=np.int32)
        np.cumsum(np.bincount(fg_row, minlength=mask.size // n_k), out=start[1:])
        rank = np.zeros(mask.size, dtype=np.min_scalar_type(max(n_k - 1, 0)))
        rank[fg] = np.arange(fg.size) - start[fg_row]
        return cls(mask.reshape(-1).view(np.uint8), fg, fg_row, start[:-1], rank, n_k)

    def position(self, flat_index: np.ndarray) -> np.ndarray:
        """1 + the position in ``fg`` of each flat index on the foreground; 0 on the background."""
        return _positions(self.mask, self.start, self.rank, self.n_k, flat_index)

    def row_steps(self, steps: np.ndarray) -> np.ndarray:
        """Row offset of each flat step that moves at most one voxel along the row (rows of 3 or more voxels)."""
        return (steps + self.n_k // 2) // self.n_k

    def label(self, steps: np.ndarray) -> tuple[np.ndarray, int]:
        """The mask's components along the forward flat ``steps`` (:func:`label_nodes`)."""
        return label_nodes(self.mask, self.fg, self.fg_row, self.start, self.rank, steps, self.row_steps(steps))

    def join(self, labels: np.ndarray, n: int, boundary: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Components of the finer ``labels`` joined along the added forward ``steps`` (:func:`join_labels`)."""
        return join_labels(
            self.mask, self.start, self.rank, self.n_k, labels, n, boundary, steps, self.row_steps(steps)
        )


@numba.njit(cache=True, nogil=True)
def _positions(mask: np.ndarray, start: np.ndarray, rank: np.ndarray, n_k: int, flat_index: np.ndarray) -> np.ndarray:
    out = np.zeros(flat_index.size, np.int64)
    for p in range(flat_index.size):
        v = flat_index[p]
        if mask[v]:
            out[p] = start[v // n_k] + rank[v] + 1
    return out


@numba.njit(cache=True, nogil=True)
def _root(parent: np.ndarray, node: int) -> int:
    """Root of ``node`` in a union-find forest (path halving)."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def label_nodes(
    mask: np.ndarray,
    fg: np.ndarray,
    fg_row: np.ndarray,
    start: np.ndarray,
    rank: np.ndarray,
    steps: np.ndarray,
    step_rows: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Connected components of a mask's foreground, numbered as cc3d numbers them.

    Args:
        mask: The flat mask as uint8 (:attr:`Nodes.mask`).
        fg: Sorted flat indices of its foreground voxels.
        fg_row: Their rows (:attr:`Nodes.fg_row`).
        start: :attr:`Nodes.start`.
        rank: :attr:`Nodes.rank`.
        steps: The forward half of the connectivity's neighbour steps as flat offsets; ``v - step`` is a
            neighbour that comes before ``v`` in memory order.
        step_rows: Their row offsets (:meth:`Nodes.row_steps`).

    Returns:
        (label 1..n of each voxel of ``fg``, n). Labels follow the memory order of each component's first
        voxel, as cc3d's raster scan gives them: every root is its component's lowest voxel.
    """
    n = fg.size
    parent = np.empty(n, np.int32)
    for a in range(n):
        root_a = a
        parent[a] = a
        v, row = fg[a], fg_row[a]
        for s in range(steps.size):
            u = v - steps[s]
            if not mask[u]:
                continue
            root_b = _root(parent, start[row - step_rows[s]] + rank[u])
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
    mask: np.ndarray,
    start: np.ndarray,
    rank: np.ndarray,
    n_k: int,
    labels: np.ndarray,
    n: int,
    boundary: np.ndarray,
    steps: np.ndarray,
    step_rows: np.ndarray,
) -> np.ndarray:
    """Components of a coarser connectivity from the labels of a finer one.

    Only pairs of boundary voxels can join two finer components (if one end of a touching pair were interior, its
    face neighbour towards the other end would form a shorter pair in the same component), so the extra steps are
    tried forward from the boundary voxels only.

    Args:
        mask: The flat mask as uint8 (:attr:`Nodes.mask`).
        start: :attr:`Nodes.start`.
        rank: :attr:`Nodes.rank`.
        n_k: :attr:`Nodes.n_k`, the row length.
        labels: The finer labels 1..n of each foreground voxel (:func:`label_nodes`).
        n: Their number.
        boundary: Flat indices of the mask's boundary voxels.
        steps: Flat offsets of the steps the coarser connectivity adds, forward half only.
        step_rows: Their row offsets (:meth:`Nodes.row_steps`).

    Returns:
        Finer label -> coarser component 1..n' (index 0 stays 0), numbered by each component's lowest finer
        label, which is the number a labelling at the coarser connectivity gives it.
    """
    parent = np.arange(n + 1).astype(np.int32)
    for v in boundary:
        row = v // n_k
        label_a = labels[start[row] + rank[v]]
        for s in range(steps.size):
            u = v + steps[s]
            if not mask[u]:
                continue
            label_b = labels[start[row + step_rows[s]] + rank[u]]
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
def anima_walk(
    covered: np.ndarray,
    sizes: np.ndarray,
    starts: np.ndarray,
    partner: np.ndarray,
    overlap: np.ndarray,
    partner_outside: np.ndarray,
    alpha: float,
    beta: float,
    gamma: float,
) -> np.ndarray:
    """Anima's detection rule for every lesion of one mask (``_lesions.anima_detected`` says what it means).

    Args:
        covered: Per lesion id, its voxels covered by the other mask's lesions (index 0 unused).
        sizes: Per lesion id, its voxel count.
        starts: Lesion ``l``'s overlapping partners are ``partner[starts[l]:starts[l + 1]]``, walking order.
        partner: Partner lesion ids, grouped by lesion.
        overlap: Overlap in voxels of each pair.
        partner_outside: Per partner id, the fraction of its voxels outside every lesion of this mask.
        alpha: Least covered fraction of a detected lesion (exclusive).
        beta: Largest fraction of a partner's voxels outside this mask's lesions (inclusive).
        gamma: Share of the overlap that the partners walked must account for (exclusive).

    Returns:
        Per lesion id, detected or not (index 0 unused, False).
    """
    detected = np.zeros(sizes.size, np.bool_)
    for lesion in range(1, sizes.size):
        if covered[lesion] / sizes[lesion] <= alpha:
            continue
        accounted = 0.0
        ok = True
        for k in range(starts[lesion], starts[lesion + 1]):
            if partner_outside[partner[k]] > beta:
                ok = False
                break
            accounted += overlap[k] / covered[lesion]
            if accounted > gamma:
                break
        detected[lesion] = ok
    return detected


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
    ijk = np.empty((targets.size, 3), np.int64)
    for t in range(targets.size):
        row = targets[t] // n_k
        i = row // n_j
        ijk[t, 0], ijk[t, 1], ijk[t, 2] = i, row - i * n_j, targets[t] - row * n_k
        bucket[t] = ((ijk[t, 0] // cell) * g_j + ijk[t, 1] // cell) * g_k + ijk[t, 2] // cell
        start[bucket[t] + 1] += 1
    for c in range(g_i * g_j * g_k):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    xyz = np.empty((targets.size, 3))
    for t in range(targets.size):
        slot = fill[bucket[t]]
        fill[bucket[t]] += 1
        for axis in range(3):
            xyz[slot, axis] = ijk[t, axis] * spacing_mm[axis]
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
