"""TextInfuse pipelines: jobs that write and check WebDataset shards. Imports stay lazy (no Ray here)."""
