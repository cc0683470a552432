"""The sync engine: list the remote tree, decide what changed, transfer it, commit the manifest."""
