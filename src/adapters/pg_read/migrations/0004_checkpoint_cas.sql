-- Every batch of a read-database projection commits as a compare-and-set on its checkpoint:
-- shopcqrs_claim_checkpoint creates the row if missing, locks it (concurrent projectors of one
-- projection serialize here, and everything loaded afterwards is current) and raises
-- SQLSTATE SC409 unless it still holds the checkpoint the batch starts from. The error aborts
-- the batch's transaction before it writes anything, so no path can move a checkpoint past an
-- event it did not apply (a second projector that went further, a commit whose answer was
-- lost and that is replayed from an older checkpoint).
CREATE FUNCTION shopcqrs_claim_checkpoint(p_name text, p_xid bigint, p_position bigint,
                                          p_bound bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  s projection_checkpoints%ROWTYPE;
BEGIN
  INSERT INTO projection_checkpoints (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
  SELECT * INTO s FROM projection_checkpoints WHERE name = p_name FOR UPDATE;
  IF s.xid <> p_xid OR s.position <> p_position OR s.bound <> p_bound THEN
    RAISE EXCEPTION USING ERRCODE = 'SC409',
      MESSAGE = format('SHOPCQRS_CHECKPOINT_MOVED projection %s stored %s.%s.%s, expected %s.%s.%s',
                       p_name, s.xid, s.position, s.bound, p_xid, p_position, p_bound);
  END IF;
END $$;
