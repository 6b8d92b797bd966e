-- The word functions of the ranked order search (pg_read 0007, where they are described), for
-- single-database mode (query_source = "write"): its search computes the words of each order
-- from the joins with the same functions, so both modes find and rank alike.

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
