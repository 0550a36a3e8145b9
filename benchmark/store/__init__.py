"""The results store: job folders committed by rename (the record) and a SQLite index rebuilt from them (the cache)."""

from .files import (
    JOB_RECORD,
    STORE_SCHEMA_VERSION,
    RunStore,
    atomic_path,
    check_store_version,
    export_run,
    file_lock,
    find_run,
    read_json,
    read_table,
    write_csv,
    write_json,
)
from .index import INDEX_NAME, dump, index_job, index_run, job_table, open_index, reindex, run_table, shift_table

__all__ = [
    "INDEX_NAME",
    "JOB_RECORD",
    "STORE_SCHEMA_VERSION",
    "RunStore",
    "atomic_path",
    "check_store_version",
    "export_run",
    "dump",
    "file_lock",
    "find_run",
    "index_job",
    "index_run",
    "job_table",
    "open_index",
    "read_json",
    "read_table",
    "reindex",
    "run_table",
    "shift_table",
    "write_csv",
    "write_json",
]
