"""The `aps-mirror` command line: thin commands over the core."""
