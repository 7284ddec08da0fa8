"""The SQLite schema, version 1: old data directories open as they are.

Tables are only ever added (``CREATE TABLE IF NOT EXISTS``): ``annotations`` came after the first
release, and a data directory without it gets it when opened; earlier versions ignore it.
"""
from __future__ import annotations

__all__ = ["SCHEMA", "SCHEMA_VERSION", "TABLES", "triggers"]

SCHEMA_VERSION = 1
#: The tables whose changes the ``revisions`` table counts (one trigger per table and operation).
TABLES = ("models", "datasets", "jobs", "results", "workers", "analyses", "searches", "annotations")

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    source_format TEXT NOT NULL,
    arch TEXT,
    input_shape TEXT NOT NULL,
    num_classes INTEGER NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    n INTEGER NOT NULL,
    input_shape TEXT NOT NULL,
    num_classes INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    worker TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    result_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status_queued ON jobs (status, queued_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    technique TEXT NOT NULL,
    family TEXT NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    baseline TEXT NOT NULL,
    compressed TEXT NOT NULL,
    baseline_weights TEXT NOT NULL,
    compressed_weights TEXT NOT NULL,
    notes TEXT NOT NULL,
    steps TEXT NOT NULL,
    environment TEXT NOT NULL,
    artifact_dir TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_created ON results (created_at);
CREATE TABLE IF NOT EXISTS analyses (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    kind TEXT NOT NULL,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    config TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_model ON analyses (model_id, created_at);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    finished_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS searches_status ON searches (status, created_at);
CREATE TABLE IF NOT EXISTS search_trials (
    search_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    params TEXT NOT NULL,
    system_attrs TEXT NOT NULL,
    PRIMARY KEY (search_id, trial)
);
CREATE TABLE IF NOT EXISTS annotations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    starred INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    name TEXT PRIMARY KEY,
    rev INTEGER NOT NULL
);
"""


def triggers() -> str:
    parts = []
    for table in TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            parts.append(
                f"CREATE TRIGGER IF NOT EXISTS rev_{table}_{op.lower()} AFTER {op} ON {table} "
                f"BEGIN UPDATE revisions SET rev = rev + 1 WHERE name = '{table}'; END;"
            )
    return "\n".join(parts)
