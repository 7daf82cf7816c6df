"""A real S3 API server for tests: moto's standalone server, reached over HTTP."""

__all__ = []
