-- Building a projection from zero: when its first batch (from the zero checkpoint) is large, the
-- read_pg projection drops the secondary indexes of order_views in that batch's transaction
-- (shopcqrs_defer_indexes) and records their definitions here. Every batch after it writes its
-- row versions without maintaining them; once the projector has caught up, the indexes are
-- created again from these definitions (shopcqrs_restore_indexes): one sort per index instead of
-- a btree insertion per row version. Both steps are transactions: a crash mid-build leaves the
-- definitions here, and whichever projector of the projection catches up next restores them.
CREATE TABLE projection_deferred_indexes (
  projection  text NOT NULL,
  name        text NOT NULL,
  definition  text NOT NULL,  -- pg_get_indexdef
  PRIMARY KEY (projection, name)
);

-- Drops the indexes of p_tables that are neither primary keys nor unique (no constraint depends
-- on them) and records them for p_projection. Answers how many.
CREATE FUNCTION shopcqrs_defer_indexes(p_projection text, p_tables regclass[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  i record;
  n integer := 0;
BEGIN
  FOR i IN SELECT ns.nspname, c.relname, pg_get_indexdef(x.indexrelid) AS definition
           FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
           JOIN pg_namespace ns ON ns.oid = c.relnamespace
           WHERE x.indrelid = ANY (p_tables) AND NOT x.indisprimary AND NOT x.indisunique
           ORDER BY c.relname
  LOOP
    INSERT INTO projection_deferred_indexes (projection, name, definition)
    VALUES (p_projection, i.relname, i.definition);
    EXECUTE format('DROP INDEX %I.%I', i.nspname, i.relname);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- Creates the indexes deferred for p_projection again. Answers how many (0: none was deferred).
CREATE FUNCTION shopcqrs_restore_indexes(p_projection text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  d record;
  n integer := 0;
BEGIN
  FOR d IN DELETE FROM projection_deferred_indexes WHERE projection = p_projection
           RETURNING definition
  LOOP
    EXECUTE d.definition;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
