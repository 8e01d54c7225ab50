"""TextInfuse VAE trainer (needs the `train` extra: torch). Not implemented yet: see the open issues."""
