"""Scoring a model against clean images: metrics, reports, checks."""
