"""Helpers and fixtures shared by the test folders: tests/conftest.py registers the fixture modules
(panel, agents, databases) for every folder; tests/browser/conftest.py declares the browser's."""
