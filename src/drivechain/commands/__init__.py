"""One module per CLI command; each defines ``register(app)`` and imports heavy code lazily."""
