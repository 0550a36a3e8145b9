"""msbench profile on real adapters, its errors, and the profiles in the store and its index (incl. reindex)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from msbench.benchmark.cli import app
from msbench.benchmark.profiling import ProfileSettings, profile_case, profile_method
from msbench.benchmark.store import dump, profile_table, reindex
from msbench.methods import get_card

runner = CliRunner()
QUICK = ProfileSettings(warmup=1, steps=1, repeats=2, latency_warmup=0)


def test_a_network_method_is_profiled_at_its_own_batch_and_patch_through_its_adapter(tmp_path, tiny_basicunet):
    case = profile_case(tmp_path / "case", spacing_mm=3.0)  # 60x72x60 voxels, the smoke grid
    card = get_card(tiny_basicunet)
    record = profile_method(card, case, settings=QUICK, workdir=tmp_path / "w", batch_size=3)
    assert record["errors"] == {} and record["not_applicable"] is None
    assert record["case_shape"] == [60, 72, 60] and record["memory_kind"] == "cpu-rss" and record["device"] == "cpu"
    # patch_mm 96 at 3 mm is 32 voxels: the sampler's patches, at the batch size given instead of the recipe's 2
    assert record["input_shape"] == [3, 1, 32, 32, 32] and record["batch_size"] == 3
    from msbench.methods.basicunet.network import build_network

    net = build_network(card.hparams("smoke"), 1)
    assert record["params_total"] == sum(t.numel() for t in net.state_dict().values() if t.is_floating_point()) - sum(
        b.numel() for _, b in net.named_buffers()
    )
    assert record["flops_forward"] > 0 and record["flops_per_sample"] * 3 == record["flops_forward"]
    assert len(record["latency_s"]) == 2 and record["latency_p50_s"] <= record["latency_p95_s"]
    assert record["volumes_per_hour"] == 3600.0 / record["latency_p50_s"]
    assert record["train_voxels_per_s"] == record["train_samples_per_s"] * 32**3
    assert record["peak_train_bytes"] > 0 and record["versions"]["torch"]


def test_profile_cli_stores_profiles_and_reindex_rebuilds_the_table(tmp_path):
    results = tmp_path / "results"
    args = ["profile", "--method", "threshold,inter-rater", "--results", str(results), "--repeats", "2"]
    result = runner.invoke(app, [*args, "--spacing", "6"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "threshold" in result.output and "n/a" in result.output and "stored 2 profile(s)" in result.output
    files = sorted((results / "profiles").glob("*.json"))
    assert len(files) == 2
    table = profile_table(results)
    assert sorted(table["method"]) == ["inter-rater", "threshold"]
    assert table["params_total"].isna().all() and (table["latency_p50_s"] > 0).all()
    assert table["run_id"].isna().all() and set(table["memory_kind"]) == {"cpu-rss"}
    stored = {json.loads(f.read_text())["profile_id"] for f in files}
    assert set(table["profile_id"]) == stored
    before = dump(results)["profiles"]
    (results / "msbench.sqlite").unlink()
    reindex(results)
    pd.testing.assert_frame_equal(dump(results)["profiles"], before)


def test_bad_method_device_and_repeats_fail_with_what_to_do(tmp_path):
    bad_method = runner.invoke(app, ["profile", "--method", "nosuch", "--results", str(tmp_path)])
    assert bad_method.exit_code == 2 and "nosuch" in bad_method.output and "threshold" in bad_method.output
    bad_device = runner.invoke(app, ["profile", "--method", "threshold", "--device", "tpu", "--results", str(tmp_path)])
    text = " ".join(bad_device.output.split())
    assert bad_device.exit_code == 2 and "--device 'tpu'" in text and "cpu, cuda or cuda:N" in text
    bad_repeats = runner.invoke(app, ["profile", "--method", "threshold", "--repeats", "0", "--results", str(tmp_path)])
    assert bad_repeats.exit_code == 2 and "--repeats must be >= 1" in bad_repeats.output
    assert not (tmp_path / "profiles").exists()


def test_every_job_stores_its_profile_indexed_with_run_and_job_ids(tmp_path, smoke_phantom, tiny_basicunet):
    results = tmp_path / "results"
    args = ["run", "--method", tiny_basicunet, "--data-root", str(smoke_phantom), "--results", str(results)]
    result = runner.invoke(app, [*args, "--no-progress", "--no-baseline"], env={"MSBENCH_NUM_THREADS": "1"})
    assert result.exit_code == 0, result.output
    (job_dir,) = [p for p in results.glob("runs/*/jobs/*") if p.is_dir()]
    record = json.loads((job_dir / "profile.json").read_text())
    assert record["errors"] == {} and record["params_total"] > 0 and record["latency_p50_s"] > 0
    assert record["batch_size"] == get_card(tiny_basicunet).recipe("smoke").batch_size
    table = profile_table(results)
    assert table[["run_id", "job_id"]].values.tolist() == [[job_dir.parent.parent.name, job_dir.name]]
    before = dump(results)["profiles"]
    reindex(results)
    pd.testing.assert_frame_equal(dump(results)["profiles"], before)


def test_a_failing_profile_is_recorded_and_never_fails_the_job(tmp_path, smoke_phantom, tiny_basicunet, monkeypatch):
    from msbench.methods.engine.network_adapter import NetworkAdapter

    def broken(self, case):
        raise RuntimeError("profiling exploded")

    monkeypatch.setattr(NetworkAdapter, "profile_network", broken)
    results = tmp_path / "results"
    args = ["run", "--method", tiny_basicunet, "--data-root", str(smoke_phantom), "--results", str(results)]
    result = runner.invoke(app, [*args, "--no-progress", "--no-baseline"], env={"MSBENCH_NUM_THREADS": "1"})
    assert result.exit_code == 0, result.output
    (job_dir,) = [p for p in results.glob("runs/*/jobs/*") if p.is_dir()]
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == "ok" and "profiling exploded" in job["profile_errors"]["network"]
    profile = json.loads((job_dir / "profile.json").read_text())
    assert profile["params_total"] is None and profile["latency_p50_s"] > 0  # latency still measured


def test_nnunet2d_standalone_says_why_its_network_is_not_profiled(tmp_path):
    case = profile_case(tmp_path / "case", spacing_mm=6.0)
    record = profile_method(get_card("nnunet2d"), case, settings=QUICK, workdir=Path(tmp_path) / "w")
    assert record["params_total"] is None and "profile.json" in record["not_applicable"]
