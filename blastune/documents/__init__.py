"""Saved documents (sweep, jobs, doctor, info, profile): loading and typed models."""
