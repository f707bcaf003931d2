-- 0001_core: the tables every feature stands on. Money is integer nano-dollars (1e-9 USD).
-- Times are ISO-8601 UTC text ('2026-01-31T12:00:00.000+00:00'), days 'YYYY-MM-DD': sortable and
-- identical on SQLite and Postgres.

-- One row per LLM call; request_id makes recording idempotent.
CREATE TABLE api_usage (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    day TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT,
    requested_model TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nanousd BIGINT NOT NULL DEFAULT 0,
    priced INTEGER NOT NULL DEFAULT 1,
    price_version TEXT,
    latency_ms INTEGER,
    outcome TEXT NOT NULL DEFAULT 'ok',
    fallback_reason TEXT,
    source TEXT NOT NULL DEFAULT 'elfctl'
);
CREATE INDEX api_usage_team_ts ON api_usage (team, ts);
CREATE INDEX api_usage_day ON api_usage (day);

-- Rollup per day/team/model, kept current in the same transaction as each usage row.
CREATE TABLE daily_cost_summary (
    day TEXT NOT NULL,
    team TEXT NOT NULL,
    model TEXT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    fallbacks BIGINT NOT NULL DEFAULT 0,
    unpriced BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nanousd BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, team, model)
);

-- A team's budget; spend per window is computed from the ledger, never reset by a job.
CREATE TABLE budgets (
    team TEXT PRIMARY KEY,
    daily_nanousd BIGINT,
    monthly_nanousd BIGINT,
    soft_ratio REAL NOT NULL DEFAULT 0.8,
    soft_action TEXT NOT NULL DEFAULT 'warn',
    hard_action TEXT NOT NULL DEFAULT 'block',
    timezone TEXT NOT NULL DEFAULT 'UTC',
    updated_at TEXT NOT NULL
);

-- Spend counters per budget window: settled spend and in-flight reservations.
CREATE TABLE spend_counters (
    team TEXT NOT NULL,
    window_kind TEXT NOT NULL,
    window_start TEXT NOT NULL,
    spent_nanousd BIGINT NOT NULL DEFAULT 0,
    reserved_nanousd BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team, window_kind, window_start)
);

-- Reservations held by calls in flight; expired ones (killed processes) are released.
CREATE TABLE budget_reservations (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    amount_nanousd BIGINT NOT NULL,
    day_start TEXT NOT NULL,
    month_start TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX budget_reservations_expiry ON budget_reservations (expires_at);

-- Every deployment as a state machine row.
CREATE TABLE deployments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team TEXT NOT NULL,
    revision INTEGER NOT NULL,
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    image TEXT,
    digest TEXT,
    who TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    details TEXT,
    UNIQUE (team, revision)
);

-- One lease per team: owner, host, pid, heartbeat, expiry (a killed holder's lease expires).
CREATE TABLE deploy_locks (
    team TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Credential metadata (values never live in the store).
CREATE TABLE credentials (
    name TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    backend TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    expires_at TEXT,
    last_used_at TEXT,
    previous_valid_until TEXT,
    PRIMARY KEY (name, scope)
);

-- Tamper-evident audit trail: each entry's mac chains to the previous one.
CREATE TABLE credential_audit (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts TEXT NOT NULL,
    os_user TEXT NOT NULL,
    host TEXT NOT NULL,
    command TEXT NOT NULL,
    action TEXT NOT NULL,
    name TEXT,
    scope TEXT NOT NULL DEFAULT '',
    version INTEGER,
    result TEXT NOT NULL,
    mac TEXT NOT NULL
);

-- Registry of teams, services and MCP servers.
CREATE TABLE registry_entries (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    endpoint TEXT,
    metadata TEXT,
    status TEXT NOT NULL DEFAULT 'unknown',
    registered_at TEXT NOT NULL,
    last_seen_at TEXT,
    PRIMARY KEY (kind, name)
);

-- Circuit breaker state shared by every process.
CREATE TABLE breaker_state (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed',
    fail_counter INTEGER NOT NULL DEFAULT 0,
    success_counter INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT,
    updated_at TEXT NOT NULL
);
