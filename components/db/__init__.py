"""Database tiers: each yields a ``DatabaseConnection``."""
