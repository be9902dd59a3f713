"""The report kinds: each a function ``build(conn, params, now) -> Document``."""
