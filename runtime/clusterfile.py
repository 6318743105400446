"""The cluster file: where ``steer up`` records the members it started.

Every other ``steer`` command run in the same folder reads it to find the
cluster with no flags. It is JSON under the data dir (``.steer/cluster.json``)::

    {"cluster_id": "...", "members": [{"id": 1, "peer": "127.0.0.1:2380",
      "client": "127.0.0.1:2379", "data_dir": ".steer/member-1"}, ...]}
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass

from kvstore.node import MemberInfo

__all__ = ["ClusterFile", "MemberEntry", "endpoints_from_env_or_file", "parse_addr"]

FILE_NAME = "cluster.json"


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class MemberEntry:
    id: int
    peer: str
    client: str
    data_dir: str

    def info(self) -> MemberInfo:
        return MemberInfo(self.id, parse_addr(self.peer), parse_addr(self.client))

    @property
    def pid_file(self) -> str:
        return os.path.join(self.data_dir, "member.pid")

    @property
    def log_file(self) -> str:
        return os.path.join(self.data_dir, "member.log")


@dataclass(frozen=True, slots=True)
class ClusterFile:
    cluster_id: str
    members: tuple[MemberEntry, ...]

    @classmethod
    def new(cls, data_dir: str, nodes: int, base_port: int, host: str = "127.0.0.1") -> ClusterFile:
        """A fresh layout: member i gets client port base+2(i-1) and peer port base+2(i-1)+1."""
        members = tuple(
            MemberEntry(
                id=i,
                client=f"{host}:{base_port + 2 * (i - 1)}",
                peer=f"{host}:{base_port + 2 * (i - 1) + 1}",
                data_dir=os.path.join(data_dir, f"member-{i}"),
            )
            for i in range(1, nodes + 1)
        )
        return cls(cluster_id=f"steer-{secrets.token_hex(4)}", members=members)

    @staticmethod
    def path(data_dir: str) -> str:
        return os.path.join(data_dir, FILE_NAME)

    @classmethod
    def load(cls, data_dir: str) -> ClusterFile | None:
        try:
            with open(cls.path(data_dir), encoding="utf-8") as f:
                raw = json.load(f)
        except FileNotFoundError:
            return None
        return cls(raw["cluster_id"], tuple(MemberEntry(**m) for m in raw["members"]))

    def save(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        tmp = self.path(data_dir) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"cluster_id": self.cluster_id, "members": [asdict(m) for m in self.members]},
                      f, indent=2)
        os.replace(tmp, self.path(data_dir))

    def member(self, member_id: int) -> MemberEntry:
        for m in self.members:
            if m.id == member_id:
                return m
        raise KeyError(f"no member {member_id} in the cluster file")

    def endpoints(self) -> list[str]:
        return [m.client for m in self.members]


def endpoints_from_env_or_file(endpoints: str | None, data_dir: str) -> list[str] | None:
    """``--endpoints`` wins, then ``STEER_ENDPOINTS``, then the cluster file."""
    text = endpoints or os.environ.get("STEER_ENDPOINTS")
    if text:
        return [e.strip() for e in text.split(",") if e.strip()]
    cf = ClusterFile.load(data_dir)
    return cf.endpoints() if cf else None
