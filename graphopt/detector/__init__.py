"""The reference workload: a sliding-window CNN person detector on an image pyramid."""
