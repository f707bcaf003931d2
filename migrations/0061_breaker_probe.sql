-- 0061_breaker_probe: when the probe call of a half-open circuit must have ended. A process takes the
-- probe slot with one conditional UPDATE (open past its reset time, or half-open with this moment
-- passed), so of N processes that find the reset time passed exactly one calls the provider; a probe
-- killed mid-call frees the slot when this moment passes. NULL (rows from before) counts as passed.
ALTER TABLE breaker_state ADD COLUMN probe_until TEXT;
