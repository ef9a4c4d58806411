"""Weight sets: catalog, home, download, import, registration, safe loading, export, sessions."""
