"""The desktop window (pywebview) around the local backend."""
