"""The operator view: the plugin's FastAPI app (JSON API, SSE) and its static pages."""
