"""kvstore/raft."""
