"""The `aiops` command line."""
