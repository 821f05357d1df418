"""User-facing tools: thin layers over frontends, passes and backends."""
