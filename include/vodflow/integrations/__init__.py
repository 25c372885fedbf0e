"""Integrations with the outside: webhooks (signed, SSRF-guarded), email, metrics. No media code."""
