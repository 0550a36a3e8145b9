"""``msbench datasets fetch``: download a public data set (registered on the ``datasets`` group in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from msbench.datasets.fetch import FetchError, fetch, load_manifest

from ._console import err, out
from ._console import fail as _fail


def datasets_fetch(
    name: Annotated[str, typer.Argument(help="Public data set to download (lesjak-3dms).")],
    dest: Annotated[Path, typer.Option(help="Folder to hold <name>/<variant>.")] = Path("data"),
    variant: Annotated[
        str, typer.Option(help="coregistered (FLAIR space, 4 modalities), raw or mni.")
    ] = "coregistered",
    manifest: Annotated[
        Path | None, typer.Option(help="A mirror's manifest instead of the committed one (same keys).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Download <base-url>/<path> from a mirror instead of the published address.")
    ] = None,
    retries: Annotated[int, typer.Option(help="Resumed attempts per file after a dropped connection.")] = 3,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Download, verify (per-file checksums) and atomically unpack a public data set; resumable."""
    try:
        spec = load_manifest(name, manifest)
        if manifest is None and base_url is None:
            err.print(
                f"downloading {name} ({variant}) from {spec.source} at commit {spec.commit[:12]}",
                highlight=False,
                soft_wrap=True,
            )
        result = fetch(
            name,
            dest,
            variant=variant,
            manifest_path=manifest,
            base_url=base_url,
            retries=retries,
            progress=progress,
            log=lambda text: out.print(text, highlight=False, markup=False, soft_wrap=True),
        )
    except FetchError as error:
        _fail(str(error))
        return
    if result.downloaded:
        out.print(f"{result.n_files} files verified and unpacked into {result.root}", highlight=False, soft_wrap=True)
    out.print(f"licence: {spec.license}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"cite: {spec.citation}", highlight=False, markup=False, soft_wrap=True)
    out.print(
        f"use it with: msbench run --dataset {name} --data-root {result.root} ...  "
        f"(or export {result.env_var}={result.root.resolve()})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
