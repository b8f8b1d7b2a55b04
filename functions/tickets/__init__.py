"""Tickets tool Lambda."""
