"""What containerd 1.6, 1.7 and 2.1 write differently for the same `ctr images pull` (observed:
containerd-store-format.md §4 and docs/containerd-store.md). All of them add the pulled repository
to the source label of each blob already there that the pull goes through."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerdDialect:
    version: str  # "1.6", "1.7", "2.1"
    schema: int  # v1/version of a new meta.db
    snapshot_ref: bool  # snapshots carry containerd.io/snapshot.ref = <chain id>
    every_manifest: bool  # ctr keeps every manifest of an index and its config, not only the platform's
    touches_unpacked_layers: bool  # a layer whose snapshot is there is still fetched (its source label updated)


CONTAINERD_1_6 = ContainerdDialect("1.6", 3, False, False, True)
CONTAINERD_1_7 = ContainerdDialect("1.7", 3, False, False, True)
CONTAINERD_2_1 = ContainerdDialect("2.1", 4, True, True, False)
CONTAINERD = {dialect.version: dialect for dialect in (CONTAINERD_1_6, CONTAINERD_1_7, CONTAINERD_2_1)}
