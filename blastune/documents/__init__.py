"""Saved documents (sweep, jobs, doctor, profile): loading and typed models."""
