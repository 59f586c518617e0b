"""Routers: search, admin (index/delete), catalog (images, stats), operations (health, metrics)."""
