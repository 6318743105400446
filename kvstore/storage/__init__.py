"""kvstore/storage."""
