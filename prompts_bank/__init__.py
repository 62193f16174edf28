"""Prompt pairs, their initialisers, and the in-memory bank of frozen task entries."""
