"""SQL and text templates: rendering, binding values, the SQL lexer, the fast path."""
