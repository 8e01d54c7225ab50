"""TextInfuse: the console script and small shared helpers (config loading)."""

__version__ = "0.1.0"
