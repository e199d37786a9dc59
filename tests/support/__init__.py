"""Test support: real services started and stopped by the suite itself."""
