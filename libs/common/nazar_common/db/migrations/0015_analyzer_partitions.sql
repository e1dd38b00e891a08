-- Partitioned analysis: each analyzer replica owns some partitions of the
-- sample stream and keeps their evaluation state in memory; it checkpoints
-- that state (analyzer_state rows of the partition, detector snapshots) in
-- batches, fenced by the partition's epoch: a replica claiming a partition
-- increments it, and a checkpoint whose epoch is no longer current is
-- refused (its writer lost the partition).
ALTER TABLE analyzer_state ADD COLUMN IF NOT EXISTS part integer;
CREATE INDEX IF NOT EXISTS analyzer_state_part_idx ON analyzer_state (part);

CREATE TABLE IF NOT EXISTS analyzer_partitions (
    part            integer PRIMARY KEY,
    epoch           bigint NOT NULL DEFAULT 0,
    owner           text,
    claimed_at      timestamptz,
    checkpointed_at timestamptz,
    checkpoints     bigint NOT NULL DEFAULT 0,
    samples         bigint NOT NULL DEFAULT 0
);

-- Live analyzer replicas (a heartbeat each): a replica owning more than its
-- share of the partitions (ceil(partitions / members)) hands the excess over.
CREATE TABLE IF NOT EXISTS analyzer_members (
    member  text PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);
