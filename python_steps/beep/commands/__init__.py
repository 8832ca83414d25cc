"""The CLI's commands, one module per step. Each module has ``register(app)``; each command only
parses options and calls the step module that does the work (keep them thin)."""
