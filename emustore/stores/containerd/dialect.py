"""What containerd 1.6, 1.7 and 2.1 write differently for the same `ctr images pull` (observed:
containerd-store-format.md §4 and docs/containerd-store.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerdDialect:
    version: str  # "1.6", "1.7", "2.1"
    schema: int  # v1/version of a new meta.db
    snapshot_ref: bool  # snapshots carry containerd.io/snapshot.ref = <chain id>
    append_sources: bool  # a blob already there gets the pulled repository added to its source label
    every_manifest: bool  # every manifest of an index and its config are kept, not only the platform's


CONTAINERD_1_6 = ContainerdDialect("1.6", 3, False, True, False)
CONTAINERD_1_7 = ContainerdDialect("1.7", 3, False, True, False)
CONTAINERD_2_1 = ContainerdDialect("2.1", 4, True, False, True)
CONTAINERD = {dialect.version: dialect for dialect in (CONTAINERD_1_6, CONTAINERD_1_7, CONTAINERD_2_1)}
