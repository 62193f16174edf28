"""The Attention Router Module: routing rules fitted from query summaries, fusion strategies, the router."""
