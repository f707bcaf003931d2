-- 0080_resilience: what elfctl.resilience keeps in the store besides breaker_state.
-- A breaker isolated by hand (`elfctl breakers open NAME`) stays open, probe or not, until closed by
-- hand: `held` names who opened it (NULL: the breaker runs by itself). fail_max and reset_timeout_s
-- are the settings the breaker's users last declared, for `elfctl breakers list`.
ALTER TABLE breaker_state ADD COLUMN held TEXT;
ALTER TABLE breaker_state ADD COLUMN fail_max INTEGER;
ALTER TABLE breaker_state ADD COLUMN reset_timeout_s REAL;

-- The queue_request strategy's durable queue: one row per call put aside until its resource is
-- healthy again. target is the function as module:qualname, payload its arguments as JSON.
-- A drainer takes a row by setting claimed_until (a drainer killed mid-run frees it when that passes).
CREATE TABLE resilience_queue (
    id TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    team TEXT,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    expires_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_until TEXT
);
CREATE INDEX resilience_queue_resource ON resilience_queue (resource, enqueued_at);
-- The bound: one counter row per resource, moved in the same transaction as the queue rows with a
-- conditional UPDATE, so concurrent enqueuers on any number of processes never pass the limit.
CREATE TABLE resilience_queue_bounds (
    resource TEXT PRIMARY KEY,
    queued INTEGER NOT NULL DEFAULT 0
);

-- The use_cache strategy's exact response cache: key = resource + ':' + SHA-256 of the request.
CREATE TABLE response_cache (
    key TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    value TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX response_cache_expires ON response_cache (expires_at);
