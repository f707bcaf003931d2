-- 0063_actions: the audit trail of what the platform did by itself (a fallback taken, a breaker
-- opened or closed, a model degraded, a request queued or dropped, a scale down and its restore, a
-- cache hit served, a registry entry changed by the platform). One row per action, never updated.
CREATE TABLE platform_actions (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    resource TEXT NOT NULL,     -- e.g. "api_quota", "docker", "registry", "llm:gpt-4o-mini"
    team TEXT,                  -- the team it concerned, when one
    trigger TEXT NOT NULL,      -- what was measured or seen: "memory 93% of 64 MiB", "429 from openai"
    strategy TEXT NOT NULL,     -- retry, switch_provider, degrade_service, queue_request, use_cache, ...
    target TEXT,                -- what it acted on: a model, a replica, a queue entry
    result TEXT NOT NULL,       -- "ok", "failed: ...", "queued", ...
    actor TEXT NOT NULL         -- the process that acted: "gateway", "resources --apply", "deploy", ...
);
CREATE INDEX platform_actions_ts ON platform_actions (ts);
CREATE INDEX platform_actions_team ON platform_actions (team, ts);
