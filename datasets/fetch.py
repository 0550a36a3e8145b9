"""Download a public data set from its published location: resumable, verified per file, unpacked atomically.

Only ``lesjak-3dms`` (3D-MR-MS, CC-BY) is public without a registration; its published mirror is the
open_ms_data GitHub repository. The committed manifest (``manifests/lesjak-3dms.json``) pins one commit of that
repository and lists every file with Git's blob id (sha1 of ``"blob <size>" + NUL + bytes``) read from the commit's
tree, and sha256 + size where the blob could be read when the manifest was made. Each file is checked against
them after download; a mismatch is refused.

Files are written into ``<dest>/lesjak-3dms/.partial-<variant>/`` (each as ``*.part`` until verified, resumed
with an HTTP Range request when interrupted), and the folder is renamed into place only when every file is
verified: a run never sees half a data set. An existing destination is left untouched. Nothing else in msbench
downloads anything.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .registry import get_dataset

CHUNK = 1 << 16
USER_AGENT = "msbench-datasets-fetch"


class FetchError(RuntimeError):
    """A download that failed, or a file that does not match its checksum (the message names file and fix)."""


@dataclass(frozen=True)
class ManifestFile:
    """One file of a manifest: its path in the source repository and its checksums."""

    path: str
    git_sha1: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class FetchManifest:
    """Where a data set is published and which files, with checksums, make it up."""

    dataset: str
    source: str
    commit: str
    url_template: str
    license: str
    citation: str
    variants: dict[str, str]
    files: tuple[ManifestFile, ...]

    def url(self, path: str, base_url: str | None = None) -> str:
        """The download address of ``path`` (``base_url/path`` when a mirror is given)."""
        if base_url is not None:
            return f"{base_url.rstrip('/')}/{path}"
        return self.url_template.format(commit=self.commit, path=path)

    def select(self, variant: str) -> tuple[ManifestFile, ...]:
        """The files of one variant plus the licence files next to it."""
        if variant not in self.variants:
            raise FetchError(
                f"--variant {variant!r}: {self.dataset} is published as {', '.join(self.variants)}; pick one of them."
            )
        prefix = self.variants[variant].rstrip("/") + "/"
        licence = f"{prefix.split('/')[0]}/LICENSE.txt"
        return tuple(f for f in self.files if f.path == licence) + tuple(
            f for f in self.files if f.path.startswith(prefix)
        )


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` left behind: the data root to use and whether it downloaded anything."""

    root: Path
    downloaded: bool
    n_files: int
    env_var: str


def manifest_names() -> tuple[str, ...]:
    """The data sets that have a committed download manifest."""
    folder = resources.files("msbench.datasets") / "manifests"
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


def load_manifest(dataset: str, path: Path | None = None) -> FetchManifest:
    """Reads a download manifest (the committed one of ``dataset`` unless ``path`` is given).

    Raises:
        FetchError: No manifest for the data set (the message lists those that have one), or a malformed file.
    """
    if path is None:
        if dataset not in manifest_names():
            raise FetchError(
                f"{dataset!r} cannot be fetched: it needs a registration with its organisers (see 'msbench datasets "
                f"info {dataset}'). Public data sets that msbench can fetch: {', '.join(manifest_names())}."
            )
        text = (resources.files("msbench.datasets") / "manifests" / f"{dataset}.json").read_text()
        where = f"the committed manifest of {dataset}"
    else:
        text, where = Path(path).read_text(), str(path)
    try:
        raw = json.loads(text)
        files = tuple(ManifestFile(f["path"], f["git_sha1"], f.get("size"), f.get("sha256")) for f in raw["files"])
        return FetchManifest(
            raw["dataset"],
            raw["source"],
            raw["commit"],
            raw["url_template"],
            raw["license"],
            raw["citation"],
            dict(raw["variants"]),
            files,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise FetchError(
            f"{where}: not a download manifest ({error!r}); expected the keys of lesjak-3dms.json."
        ) from None


def git_blob_sha1(path: Path) -> str:
    """Git's blob id of a file: sha1 over ``b"blob <size>" + NUL`` and the bytes (what ``git hash-object`` prints)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, entry: ManifestFile) -> str | None:
    """None when ``path`` matches every checksum of ``entry``, else what differs (for the error message)."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return f"{size} bytes, expected {entry.size}"
    got = git_blob_sha1(path)
    if got != entry.git_sha1:
        return f"git blob id {got}, expected {entry.git_sha1}"
    if entry.sha256 is not None and (got := sha256(path)) != entry.sha256:
        return f"sha256 {got}, expected {entry.sha256}"
    return None


def _target_name(manifest: FetchManifest, variant: str) -> str:
    return manifest.variants[variant].rstrip("/").rsplit("/", 1)[-1]


def destination(dest: Path, manifest: FetchManifest, variant: str) -> Path:
    """The data root a fetch creates: ``<dest>/<dataset>/<variant folder>`` (e.g. ``data/lesjak-3dms/coregistered``)."""
    manifest.select(variant)
    return Path(dest) / manifest.dataset / _target_name(manifest, variant)


def fetch(
    dataset: str,
    dest: Path,
    *,
    variant: str = "coregistered",
    manifest_path: Path | None = None,
    base_url: str | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> FetchResult:
    """Downloads, verifies and atomically unpacks one variant of a public data set.

    Args:
        dataset: A data set with a download manifest (``lesjak-3dms``).
        dest: Folder to hold ``<dataset>/<variant folder>``.
        variant: ``coregistered`` (default), ``raw`` or ``mni``.
        manifest_path: Another manifest (a mirror's, or a test's) instead of the committed one.
        base_url: Download ``base_url/<path>`` instead of the manifest's published address.
        retries: Resumed attempts per file after a dropped connection, within this call.
        timeout_s: Socket timeout of each request.
        progress: Show a progress bar per file.
        log: Where messages go.

    Returns:
        The data root and whether anything was downloaded (False when the destination already existed).

    Raises:
        FetchError: A file could not be downloaded after ``retries`` resumed attempts (the partial download is
            kept and the next call resumes it), or a file does not match its checksum (it is deleted).
    """
    manifest = load_manifest(dataset, manifest_path)
    entries = manifest.select(variant)
    target = destination(dest, manifest, variant)
    env_var = get_dataset(manifest.dataset).env_var
    if target.exists():
        log(f"{target} already exists; left untouched (delete it to fetch again).")
        return FetchResult(target, False, 0, env_var)
    partial = target.parent / f".partial-{target.name}"
    prefix = manifest.variants[variant].rstrip("/") + "/"
    for number, entry in enumerate(entries, start=1):
        relative = entry.path[len(prefix) :] if entry.path.startswith(prefix) else entry.path.rsplit("/", 1)[-1]
        final = partial / relative
        if final.is_file() and verify(final, entry) is None:
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        url = manifest.url(entry.path, base_url)
        _download(url, part, entry, retries, timeout_s, progress, f"[{number}/{len(entries)}] {relative}")
        problem = verify(part, entry)
        if problem is not None:
            part.unlink()
            raise FetchError(
                f"{url}: the downloaded file {relative} is corrupt or not the published one ({problem}); it was "
                f"deleted and nothing was unpacked into {target}. Run the fetch again; if it fails the same way, the "
                "mirror serves other bytes than the manifest's pinned commit."
            )
        os.replace(part, final)
    os.rename(partial, target)
    return FetchResult(target, True, len(entries), env_var)


def _download(
    url: str, part: Path, entry: ManifestFile, retries: int, timeout_s: float, progress: bool, label: str
) -> None:
    """Appends to ``part`` until the server has sent the whole file, resuming with a Range request."""
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if entry.size is not None and have >= entry.size:
            return
        try:
            if _request_into(url, part, have, timeout_s, progress, label):
                return
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code not in (408, 429, 500, 502, 503, 504):
                raise FetchError(f"{url}: the server answered HTTP {error.code} {error.reason}.") from None
            attempt += 1
            if attempt > retries:
                raise FetchError(
                    f"{url}: the download stopped ({error!r}) after {retries} resumed attempts; "
                    f"{part} keeps the bytes received, and running the same fetch again resumes from there."
                ) from None


def _request_into(url: str, part: Path, have: int, timeout_s: float, progress: bool, label: str) -> bool:
    """One GET (ranged from ``have``); True when the response ended at the file's end."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 (https or a given mirror)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing after `have`: the part is complete (verification decides)
            return True
        raise
    with response:
        if have and response.status != 206:  # the server ignored Range: start again
            have = 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        bar = _bar(label, have, None if expected is None else have + expected, progress)
        received = 0
        with part.open("ab" if have else "wb") as handle:
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        bar.close()
    if expected is not None and received < expected:
        raise http.client.IncompleteRead(b"", expected - received)
    return True


def _bar(label: str, initial: int, total: int | None, enabled: bool):  # noqa: ANN202 (tqdm's type)
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not enabled
    )
