"""Repricing with provenance: staff reprice an endpoint's generations from a date (services, staff pages)."""
