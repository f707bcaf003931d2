-- 0062_usage_import_batches: a strict `cost import` in short transactions that stays all-or-nothing.
-- The file is read twice: first only checked (nothing written; a bad row fails the import), then
-- recorded in bounded batches tagged with the import's id, each batch with its rollup and counter
-- changes. An import that fails on the way, or whose process died (kill -9, crash; found by the next
-- `cost import` or `cost reconcile`), is undone by that id: its rows are deleted with their rollups
-- and counters. usage_imports holds each strict import's state (recording -> done; undoing, then the
-- row goes) and its holder (host, pid, start time, heartbeat, owner token), so a live import is never
-- undone and a dead one is found.
CREATE TABLE usage_imports (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started BIGINT,
    pidns TEXT,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    rows_recorded BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX usage_imports_state ON usage_imports (state);

-- Which import brought a row (NULL for calls recorded live); partial, so live rows cost no index entry.
ALTER TABLE api_usage ADD COLUMN import_id TEXT;
CREATE INDEX api_usage_import ON api_usage (import_id) WHERE import_id IS NOT NULL;
