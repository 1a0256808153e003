"""Pytest fixtures for the radio tests: a private system bus and the simulated BlueZ on it."""
