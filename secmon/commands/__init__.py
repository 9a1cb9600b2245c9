"""Top-level commands that drive the whole engine (scan, demo); command groups of one package live in that package's ``cli.py``."""
