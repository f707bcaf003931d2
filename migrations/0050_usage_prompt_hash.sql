-- 0050_usage_prompt_hash: a hash of each call's prompt (messages + model parameters), so `cost
-- optimize` can find repeated identical prompts (what a response cache would save). The ledger
-- fills it when it records a call (SHA-256 hex of the canonical JSON of the messages); NULL means
-- unknown and is never counted as a repeat. No index: optimize reads it through api_usage_team_ts
-- (team, ts) over a bounded window.
ALTER TABLE api_usage ADD COLUMN prompt_hash TEXT;
