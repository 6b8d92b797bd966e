-- What the service runs after every command's COMMIT, in the same pipeline (queries.h
-- kCommitBound): the commit bound behind the consistency token. It takes no xid. (The outbox
-- readers are woken by one NOTIFY per burst of commits from the write store's CommitNotifier,
-- on a connection of its own, not by the command's session.)
-- Appended to place.sql / pay.sql by scripts/bench-commands.sh --diagnose, to measure what
-- this statement costs on its own.
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS bound;
