"""The workflow handler's modules (stdlib-only at import time; see docs/handler.md)."""
