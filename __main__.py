"""pgtiers: one PostgreSQL program for every phase. The work is in ``components``."""

from components.config import load_settings
from components.stack import build

build(load_settings())
