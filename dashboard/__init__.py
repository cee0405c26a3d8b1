"""The platform dashboard: wallet sign-in (EIP-4361), keys, credits, usage, models, settings, docs.

Served on its own host/port, separate from the public API; see `dashboard.app.create_dashboard`.
"""
