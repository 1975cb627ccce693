"""HTTP endpoints, each a thin handler over the request path."""
