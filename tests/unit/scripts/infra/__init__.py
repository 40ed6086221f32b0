"""Unit tests of scripts/infra/."""
