-- 0100_notify: alerts go through an outbox, so nothing on a call or deploy path waits for a webhook.
-- notify_events: one row per event, de-duplicated by its key (a budget crossing once per window and
-- team; an automatic action once). notify_deliveries: one row per (event, channel) the sender tried:
-- pending with its next attempt time, sent, or failed after the retry policy gave up (kept, so
-- `notify list --failed` shows it and `notify retry` sends it again). notify_channels: a channel a
-- receiver disabled (HTTP 410 Gone), kept until `notify retry --enable`.
CREATE TABLE notify_events (
    id TEXT PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    team TEXT,
    title TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX notify_events_ts ON notify_events (ts);
CREATE TABLE notify_deliveries (
    event_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT,
    last_error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (event_id, channel)
);
CREATE INDEX notify_deliveries_state ON notify_deliveries (state, next_at);
CREATE TABLE notify_channels (
    channel TEXT PRIMARY KEY,
    disabled_at TEXT NOT NULL,
    reason TEXT NOT NULL
);
