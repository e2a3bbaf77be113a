"""Inclusion and consistency proofs over the stored log (RFC 9162 section 2.1.3 and 2.1.4).

Complete-subtree hashes come from `audit_nodes` (levels 4, 8, 12, ...) and the records' leaf hashes;
a subtree at another level is folded from at most 8 stored hashes, so a proof costs O(log n) small
reads. Proofs are checked by clients against a signed checkpoint, so a tampered node cache can only
produce proofs that fail, never false assurance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from earshot.audit.merkle import TreeView, node_hash
from earshot.audit.models import AuditNode, AuditRecord
from earshot.audit.services import NODE_STRIDE, head


class ProofError(ValueError):
    """A proof was asked for a leaf or size that the log does not have."""


def _fold(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class StoredTree(TreeView):
    """A `TreeView` over the database. `prefetch` loads every hash a computation needs in two queries."""

    def __init__(self, session: Session) -> None:
        super().__init__(self._subtree)
        self.session = session
        self._hashes: dict[tuple[int, int], bytes] = {}  # (stored level, index) -> hash

    @staticmethod
    def _span(level: int, index: int) -> tuple[int, int, int]:
        """The stored level and index range [first, first + width) that a subtree folds from."""
        base = (level // NODE_STRIDE) * NODE_STRIDE
        width = 1 << (level - base)
        return base, index * width, width

    def prefetch(self, computation: Callable[[TreeView], object]) -> None:
        """Dry-run `computation` to learn which subtrees it reads, then load them all at once."""
        needed: set[tuple[int, int]] = set()

        def record(level: int, index: int) -> bytes:
            needed.add((level, index))
            return bytes(32)

        computation(TreeView(record))
        leaves, nodes = [], []
        for level, index in needed:
            base, first, width = self._span(level, index)
            if base == 0:
                leaves.append(and_(AuditRecord.seq > first, AuditRecord.seq <= first + width))
            else:
                nodes.append(
                    and_(AuditNode.level == base, AuditNode.idx >= first, AuditNode.idx < first + width)
                )
        if leaves:
            for seq, h in self.session.execute(
                select(AuditRecord.seq, AuditRecord.leaf_hash).where(or_(*leaves))
            ):
                self._hashes[(0, seq - 1)] = bytes(h)
        if nodes:
            query = select(AuditNode.level, AuditNode.idx, AuditNode.hash).where(or_(*nodes))
            for level, idx, h in self.session.execute(query):
                self._hashes[(level, idx)] = bytes(h)

    def _subtree(self, level: int, index: int) -> bytes:
        base, first, width = self._span(level, index)
        found = [self._hashes.get((base, i)) for i in range(first, first + width)]
        if any(h is None for h in found):
            found = self._load(base, first, width)
        if len(found) != width:
            raise ProofError(f"log storage lacks the subtree at level {level}, index {index}")
        return _fold(found)  # type: ignore[arg-type]

    def _load(self, base: int, first: int, width: int) -> list[bytes]:
        if base == 0:
            query = (
                select(AuditRecord.leaf_hash)
                .where(AuditRecord.seq > first, AuditRecord.seq <= first + width)
                .order_by(AuditRecord.seq)
            )
        else:
            query = (
                select(AuditNode.hash)
                .where(AuditNode.level == base, AuditNode.idx >= first, AuditNode.idx < first + width)
                .order_by(AuditNode.idx)
            )
        return [bytes(h) for h in self.session.execute(query).scalars()]


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    path: list[bytes]

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "root_hash": self.root_hash.hex(),
            "audit_path": [h.hex() for h in self.path],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]

    def to_json(self) -> dict[str, object]:
        return {
            "first": self.first,
            "second": self.second,
            "first_root": self.first_root.hex(),
            "second_root": self.second_root.hex(),
            "consistency_path": [h.hex() for h in self.path],
        }


def _size_or_current(session: Session, tree_size: int | None) -> int:
    current, _ = head(session)
    size = current if tree_size is None else tree_size
    if not 0 <= size <= current:
        raise ProofError(f"tree size {size} is beyond the log's size {current}")
    return size


def root_at(session: Session, tree_size: int) -> bytes:
    """MTH of the first `tree_size` records."""
    size = _size_or_current(session, tree_size)
    tree = StoredTree(session)
    tree.prefetch(lambda t: t.range_hash(0, size))
    return tree.range_hash(0, size)


def inclusion_proof(session: Session, seq: int, tree_size: int | None = None) -> InclusionProof:
    """Proof that record `seq` is leaf seq-1 of the tree of `tree_size` (default: current) records."""
    size = _size_or_current(session, tree_size)
    if not 1 <= seq <= size:
        raise ProofError(f"record {seq} is not in a tree of {size} records")
    tree = StoredTree(session)
    tree.prefetch(
        lambda t: (t.range_hash(0, size), t.inclusion_proof(seq - 1, size), t.range_hash(seq - 1, seq))
    )
    leaf = tree.range_hash(seq - 1, seq)
    path = tree.inclusion_proof(seq - 1, size)
    return InclusionProof(seq, seq - 1, size, leaf, tree.range_hash(0, size), path)


def consistency_proof(session: Session, first: int, second: int | None = None) -> ConsistencyProof:
    """Proof that the tree of `first` records is a prefix of the tree of `second` (default: current)."""
    size = _size_or_current(session, second)
    if not 0 <= first <= size:
        raise ProofError(f"first size {first} must be between 0 and {size}")
    tree = StoredTree(session)
    tree.prefetch(lambda t: (t.range_hash(0, first), t.range_hash(0, size), t.consistency_proof(first, size)))
    return ConsistencyProof(
        first, size, tree.range_hash(0, first), tree.range_hash(0, size), tree.consistency_proof(first, size)
    )
