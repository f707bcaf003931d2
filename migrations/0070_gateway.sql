-- 0070_gateway: the LLM gateway's team keys and the revision a call came from.
-- A key is shown once at creation ("elf_<prefix>_<secret>"); only the sha256 of the whole key is
-- kept, so the store never holds anything a caller could present. The prefix names the key in
-- `gateway key list/revoke` and finds its row without a scan. `revision` is the deployed revision
-- the key was minted for (NULL: an operator's key); deploy revokes a revision's key once its
-- replicas are retired. Timestamps are ISO-8601 UTC text like every other table.
CREATE TABLE gateway_keys (
    prefix TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    team TEXT NOT NULL,
    revision INTEGER,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX gateway_keys_team ON gateway_keys (team);

-- The deployed revision a gateway call came from (from its key); NULL for calls made any other way.
ALTER TABLE api_usage ADD COLUMN revision INTEGER;
