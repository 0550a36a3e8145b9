"""`msbench datasets fetch` against a local HTTP server (127.0.0.1, Range support) serving a tiny 3D-MR-MS mirror."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.datasets import get_dataset
from msbench.datasets.fetch import FetchError, fetch, git_blob_sha1, load_manifest

LICENSE = "CC-BY test licence\n"
STEMS = ("FLAIR", "T1W", "T1WKS", "T2W")


class _Mirror(BaseHTTPRequestHandler):
    """Serves ``root`` with Range requests; drops the connection after ``drop_after`` bytes of ``drop_path`` once."""

    root: Path
    drop_path: str | None = None
    drop_after = 0
    ranges: list[tuple[str, str | None]]

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        type(self).ranges.append((self.path, header))
        start = 0
        if header:
            match = re.fullmatch(r"bytes=(\d+)-", header)
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).drop_path == self.path and not header:
            type(self).drop_path = None
            self.wfile.write(body[: type(self).drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _nifti(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.0, 1.0])), path)


@pytest.fixture
def mirror(tmp_path: Path):
    """A tiny open_ms_data tree (2 patients, co-registered layout), its manifest, and a server for it."""
    root = tmp_path / "mirror"
    (root / "cross_sectional").mkdir(parents=True)
    (root / "cross_sectional" / "LICENSE.txt").write_text(LICENSE)
    rng = np.random.default_rng(0)
    for patient in ("patient01", "patient02"):
        folder = root / "cross_sectional" / "coregistered" / patient
        for stem in STEMS:
            _nifti(folder / f"{stem}.nii.gz", rng.normal(size=(24, 20, 16)).astype(np.float32))
        _nifti(folder / "consensus_gt.nii.gz", (rng.random((24, 20, 16)) > 0.97).astype(np.uint8))
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = hashlib.sha1(b"blob " + str(len(data)).encode() + b"\x00" + data).hexdigest()
        files.append(
            {"path": str(path.relative_to(root)), "git_sha1": blob, "sha256": hashlib.sha256(data).hexdigest()}
        )
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "dataset": "lesjak-3dms",
                "source": "test mirror",
                "commit": "0" * 40,
                "url_template": "http://invalid/{commit}/{path}",
                "license": "CC-BY",
                "citation": "Lesjak et al. (test)",
                "variants": {"coregistered": "cross_sectional/coregistered"},
                "files": files,
            }
        )
    )
    handler = type("Mirror", (_Mirror,), {"root": root, "ranges": [], "drop_path": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, manifest, f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_full_fetch_verifies_unpacks_and_loads(mirror, tmp_path: Path) -> None:
    root, manifest, url, _ = mirror
    result = CliRunner().invoke(
        app,
        ["datasets", "fetch", "lesjak-3dms", "--dest", str(tmp_path / "data"), "--manifest", str(manifest)]
        + ["--base-url", url, "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "data" / "lesjak-3dms" / "coregistered"
    assert "licence: CC-BY" in result.output and "Lesjak et al. (test)" in result.output
    assert "MSBENCH_LESJAK_3DMS_ROOT=" in result.output and f"--data-root {target}" in result.output
    assert (target / "LICENSE.txt").read_text() == LICENSE
    assert not list(target.parent.glob(".partial-*"))
    original = root / "cross_sectional" / "coregistered" / "patient02" / "T2W.nii.gz"
    assert (target / "patient02" / "T2W.nii.gz").read_bytes() == original.read_bytes()
    cases = get_dataset("lesjak-3dms").load_cases(target)
    assert [c.patient_id for c in cases] == ["patient01", "patient02"]
    assert set(cases[0].images) == {"flair", "t1", "t1post", "t2"}


def test_dropped_connection_is_resumed_with_a_range_request(mirror, tmp_path: Path) -> None:
    root, manifest, url, handler = mirror
    handler.drop_path = "/cross_sectional/coregistered/patient01/FLAIR.nii.gz"
    size = (root / handler.drop_path.lstrip("/")).stat().st_size
    handler.drop_after = size // 2
    # No retries within the call: the first fetch fails, keeps the bytes, and exposes no data set.
    with pytest.raises(FetchError, match="resumes from there"):
        fetch("lesjak-3dms", tmp_path, manifest_path=manifest, base_url=url, retries=0, progress=False, log=str)
    target = tmp_path / "lesjak-3dms" / "coregistered"
    assert not target.exists()
    part = tmp_path / "lesjak-3dms" / ".partial-coregistered" / "patient01" / "FLAIR.nii.gz.part"
    assert part.stat().st_size == size // 2
    result = fetch("lesjak-3dms", tmp_path, manifest_path=manifest, base_url=url, progress=False, log=str)
    assert result.downloaded and result.root == target
    first = [r for r in handler.ranges if r[0].endswith("patient01/FLAIR.nii.gz")]
    assert first == [(first[0][0], None), (first[0][0], f"bytes={size // 2}-")]
    assert (target / "patient01" / "FLAIR.nii.gz").read_bytes() == (root / first[0][0].lstrip("/")).read_bytes()


def test_drop_within_one_call_is_retried(mirror, tmp_path: Path) -> None:
    root, manifest, url, handler = mirror
    handler.drop_path = "/cross_sectional/coregistered/patient02/consensus_gt.nii.gz"
    handler.drop_after = 100
    result = fetch("lesjak-3dms", tmp_path, manifest_path=manifest, base_url=url, retries=2, progress=False, log=str)
    assert result.downloaded
    name = "/cross_sectional/coregistered/patient02/consensus_gt.nii.gz"
    assert [r for r in handler.ranges if r[0] == name] == [(name, None), (name, "bytes=100-")]
    got = result.root / "patient02" / "consensus_gt.nii.gz"
    assert got.read_bytes() == (root / name.lstrip("/")).read_bytes()


def test_corrupt_file_is_refused_and_nothing_unpacked(mirror, tmp_path: Path) -> None:
    root, manifest, url, _ = mirror
    flair = root / "cross_sectional" / "coregistered" / "patient02" / "FLAIR.nii.gz"
    data = bytearray(flair.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flair.write_bytes(bytes(data))
    result = CliRunner().invoke(
        app,
        ["datasets", "fetch", "lesjak-3dms", "--dest", str(tmp_path), "--manifest", str(manifest), "--base-url", url]
        + ["--no-progress"],
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "patient02/FLAIR.nii.gz is corrupt" in text and "git blob id" in text
    assert not (tmp_path / "lesjak-3dms" / "coregistered").exists()
    assert not (tmp_path / "lesjak-3dms" / ".partial-coregistered" / "patient02" / "FLAIR.nii.gz.part").exists()


def test_existing_destination_is_left_untouched(mirror, tmp_path: Path) -> None:
    _, manifest, url, handler = mirror
    target = tmp_path / "lesjak-3dms" / "coregistered"
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("keep")
    result = fetch("lesjak-3dms", tmp_path, manifest_path=manifest, base_url=url, progress=False, log=str)
    assert not result.downloaded and result.root == target
    assert [p.name for p in target.iterdir()] == ["mine.txt"] and (target / "mine.txt").read_text() == "keep"
    assert handler.ranges == []


def test_git_blob_id_matches_git(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "f.bin"
    path.write_bytes(np.random.default_rng(1).bytes(70_000))
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout
    assert git_blob_sha1(path) == expected.strip()


def test_committed_manifest_pins_the_published_tree() -> None:
    manifest = load_manifest("lesjak-3dms")
    assert re.fullmatch(r"[0-9a-f]{40}", manifest.commit)
    files = manifest.select("coregistered")
    assert files[0].path == "cross_sectional/LICENSE.txt"
    names = {f.path.rsplit("/", 1)[-1] for f in files[1:]}
    assert {"FLAIR.nii.gz", "T1W.nii.gz", "T1WKS.nii.gz", "T2W.nii.gz", "consensus_gt.nii.gz"} <= names
    assert len({f.path.split("/")[2] for f in files[1:]}) == 30
    assert all(re.fullmatch(r"[0-9a-f]{40}", f.git_sha1) for f in manifest.files)


def test_committed_manifest_matches_the_shared_sample() -> None:
    sample = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "open_ms_data"
    if not sample.is_dir():
        pytest.skip("../shared/data/open_ms_data is absent")
    by_path = {f.path: f for f in load_manifest("lesjak-3dms").files}
    checked = 0
    for path in sorted(sample.rglob("*.nii.gz")):
        entry = by_path[str(path.relative_to(sample))]
        assert git_blob_sha1(path) == entry.git_sha1
        assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        checked += 1
    assert checked >= 5
