"""secmon's benchmark harness: secmon beside its baselines in the same run, as ratios."""
