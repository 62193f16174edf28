"""The Attention Router Module: fuses bank entries per question (not built yet; see the issues)."""
