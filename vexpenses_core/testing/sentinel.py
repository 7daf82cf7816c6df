"""Redis with Sentinel for tests: a primary, a replica and sentinels on local ports."""

__all__ = []
