"""kvstore/testing."""
