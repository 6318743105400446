"""Moving Raft messages between members and serving clients: asyncio TCP, msgpack frames."""
