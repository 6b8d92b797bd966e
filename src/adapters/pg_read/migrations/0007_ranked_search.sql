-- Ranked, typo-tolerant order search (GET /v1/search/orders, docs/API.md).
--
-- The words of a search document are its whitespace-separated tokens, lower-cased, plus the
-- alphanumeric pieces of each token: "Ada Lovelace ada-7@example.com WID-7 Blue Widget" has the
-- words ada, lovelace, ada-7@example.com, 7, example, com, wid-7, wid, blue, widget. They are
-- kept as a tsvector (search_orders.words, generated from the document, GIN-indexed): a query
-- word matches a document exactly (the word is one of its words), by prefix (a word starts with
-- it) or, for query words of 5+ characters, fuzzily (a word at Levenshtein distance 1: one
-- wrong, missing or extra letter). The fuzzy candidates are looked up in search_words, the
-- dictionary of every document word of 4..64 characters, and added to the tsquery as
-- alternatives, so that every match is answered by the GIN index of search_orders. The
-- dictionary is indexed by deletion keys (a word and every string one deletion away from it;
-- two words are at distance 1 at most only if their keys overlap): about ten btree-like probes
-- per query word, where a trigram index had to recheck thousands of similar words.
-- The same functions are defined in the write database (pg_write 0003) for single-database
-- mode, which computes the words of each order from its joins.

CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

CREATE FUNCTION shopcqrs_search_words(doc text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}')
  FROM (SELECT unnest(regexp_split_to_array(lower(doc), '\s+'))
        UNION ALL SELECT unnest(regexp_split_to_array(lower(doc), '[^[:alnum:]]+'))) AS t (w)
  WHERE w <> ''
$$;

CREATE FUNCTION shopcqrs_search_vector(doc text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_to_tsvector(shopcqrs_search_words(doc))
$$;

-- The tsquery operand (text) of the lexeme w, taken verbatim; with prefix, of every lexeme that
-- starts with w.
CREATE FUNCTION shopcqrs_search_term(w text, prefix boolean) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT '''' || replace(replace(w, '\', '\\'), '''', '''''') || ''''
         || CASE WHEN prefix THEN ':*' ELSE '' END
$$;

-- The deletion keys of w: w and every string one deletion away from it.
CREATE FUNCTION shopcqrs_search_keys(w text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_agg(DISTINCT k)
  FROM (SELECT w UNION ALL
        SELECT left(w, i - 1) || substr(w, i + 1) FROM generate_series(1, char_length(w)) AS i)
       AS t (k)
$$;

-- Whether a and b are at Levenshtein distance 1 at most (levenshtein() takes up to 255
-- characters; longer words are never that close to a query word, which has at most 200).
CREATE FUNCTION shopcqrs_search_close(a text, b text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN abs(char_length(a) - char_length(b)) <= 1 AND char_length(a) <= 255
                   AND char_length(b) <= 255
              THEN levenshtein(a, b) <= 1 ELSE false END
$$;

-- placed_at: the time of the order's OrderPlaced (as order_views.placed_at), so that ranking and
-- its ties (newest first) and the date filter need nothing but search_orders; the order view is
-- read for the page only (and for the status filter).
ALTER TABLE search_orders ADD COLUMN placed_at timestamptz;
UPDATE search_orders s SET placed_at = o.placed_at FROM order_views o WHERE o.id = s.id;
UPDATE search_orders SET placed_at = 'epoch' WHERE placed_at IS NULL;  -- not in read_pg yet
ALTER TABLE search_orders ALTER COLUMN placed_at SET NOT NULL;

ALTER TABLE search_orders
  ADD COLUMN words tsvector GENERATED ALWAYS AS (shopcqrs_search_vector(document)) STORED;

-- The dictionary of the fuzzy matches: every word of 4..64 characters of any document (never
-- removed: a word no document has any more only adds an alternative that matches nothing).
CREATE TABLE search_words (
  word  text PRIMARY KEY,
  keys  text[] GENERATED ALWAYS AS (shopcqrs_search_keys(word)) STORED
);

INSERT INTO search_words (word)
SELECT DISTINCT w FROM search_orders s, unnest(tsvector_to_array(s.words)) AS t (w)
WHERE char_length(w) BETWEEN 4 AND 64;

CREATE FUNCTION shopcqrs_note_search_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO search_words (word)
  SELECT DISTINCT w FROM new_rows n, unnest(tsvector_to_array(n.words)) AS t (w)
  WHERE char_length(w) BETWEEN 4 AND 64
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;

CREATE TRIGGER search_orders_words_inserted AFTER INSERT ON search_orders
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION shopcqrs_note_search_words();
CREATE TRIGGER search_orders_words_updated AFTER UPDATE ON search_orders
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION shopcqrs_note_search_words();

-- Without the pending list (fastupdate): it is scanned in full by every search until a vacuum
-- merges it, which cost searches more than the projection saves on writes.
CREATE INDEX search_orders_words_idx ON search_orders USING gin (words) WITH (fastupdate = off);
CREATE INDEX search_words_keys_idx ON search_words USING gin (keys) WITH (fastupdate = off);

-- Search no longer matches substrings: the trigram index of the documents (about a hundred
-- entries per row version) is replaced by the word index (one entry per word).
DROP INDEX search_orders_document_idx;
