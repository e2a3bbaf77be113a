"""Earshot: human review of voice recordings, de-identified and access-controlled by construction."""

__version__ = "0.1.0"
