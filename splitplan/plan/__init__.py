"""Cluster sizing: capacity model, ILP, simulated verification and studies (see docs/optimizer.md)."""
