"""Tests of the object API."""
