"""The `splitplan` command: thin click wrappers over the library."""
