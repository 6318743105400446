"""kvstore/mvcc."""
