"""Unit tests of scripts/ (the local stack: infra, launcher, supervisor, profiles)."""
