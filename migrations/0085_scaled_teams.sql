-- 0085_scaled_teams: teams the platform scaled down by itself (the resource monitor's scale_down
-- policy), with the replica count to restore once the resource has recovered. One row per team
-- while it runs below its count; `restore` deletes it. Every change is also a platform_actions row.
CREATE TABLE scaled_teams (
    team TEXT PRIMARY KEY,
    target TEXT NOT NULL,           -- the deploy target that runs it: docker | kubernetes
    original_replicas INTEGER NOT NULL,
    replicas INTEGER NOT NULL,      -- what runs now
    resource TEXT NOT NULL,         -- the resource type whose state caused it
    scaled_at TEXT NOT NULL
);
