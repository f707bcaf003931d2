-- 0105_provider_limits: each provider model's rate limit as its last answer through the gateway stated
-- it (x-ratelimit-* headers). One row per (provider, model), overwritten at most about once a second
-- per gateway process, and at once when the model crosses the api_quota critical threshold.
-- Read by `elfctl resources` (api_quota) and by the gateways (which model of a chain serves).
CREATE TABLE provider_limits (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    limit_requests BIGINT,
    remaining_requests BIGINT,
    limit_tokens BIGINT,
    remaining_tokens BIGINT,
    reset_requests_at TEXT,     -- when the requests window refills (ISO UTC), from x-ratelimit-reset-requests
    reset_tokens_at TEXT,
    observed_at TEXT NOT NULL,  -- when the answer carrying them arrived
    PRIMARY KEY (provider, model)
);
