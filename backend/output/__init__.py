"""Tables: atomic writes, the partial table and resume, formats, master table, dates."""
