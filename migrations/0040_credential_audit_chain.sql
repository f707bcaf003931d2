-- Credentials (issue 9): each audit entry records the MAC it chains to, so `creds audit --verify`
-- can tell an edited entry from a removed or moved one; the head row (HMAC'd) catches a cut tail.
ALTER TABLE credential_audit ADD COLUMN prev_mac TEXT;

CREATE TABLE credential_audit_head (
    id INTEGER PRIMARY KEY,
    key_backend TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);
