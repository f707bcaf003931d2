-- 0090_registry: the service registry (teams, services, MCP servers, outside agents). The table 0001
-- created was never used; it keyed names per kind, and a name here must be unique across kinds (a
-- team's depends_on names an entry without saying its kind), so it is replaced.
-- Liveness is computed at read time from these timestamps (services/registry/liveness.py), the
-- Consul way: check_status is what the last heartbeat said, heartbeat_at when; ttl_s and
-- deregister_after_s are NULL when the entry has none. last_status is the status the platform last
-- saw, so a sweep records each change once in the actions trail.
DROP TABLE registry_entries;
CREATE TABLE registry_entries (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    url TEXT,
    endpoints TEXT NOT NULL DEFAULT '{}',      -- JSON {"network": url, "host": url, ...}
    owner TEXT,
    lifecycle TEXT,
    capabilities TEXT NOT NULL DEFAULT '[]',   -- JSON list; registry_capabilities indexes it
    depends_on TEXT NOT NULL DEFAULT '[]',     -- JSON list of entry names
    metadata TEXT NOT NULL DEFAULT '{}',       -- JSON, kind-specific (revision, digest, card, mcp config)
    ttl_s REAL,
    deregister_after_s REAL,
    check_status TEXT NOT NULL DEFAULT 'passing',
    note TEXT NOT NULL DEFAULT '',
    heartbeat_at TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'cli',        -- who registered it: cli, deploy, import-card, mcp, code
    last_status TEXT NOT NULL DEFAULT 'passing'
);
CREATE INDEX registry_entries_kind ON registry_entries (kind, name);
CREATE INDEX registry_entries_owner ON registry_entries (owner, name);
CREATE TABLE registry_capabilities (
    capability TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (capability, name)
);
CREATE INDEX registry_capabilities_name ON registry_capabilities (name);
