"""Reading files: YAML with positions, schemas, the loader, caches, the project."""
