"""RFC 6962 / RFC 9162 Merkle tree hashing, the compact range (frontier), and proofs.

Pure functions over hashes; storage is behind a `subtree(level, index) -> hash` callable.

- leaf hash: SHA-256(0x00 || entry); interior node: SHA-256(0x01 || left || right)
- MTH of n leaves splits at k, the largest power of two smaller than n (RFC 9162 section 2.1.1)
- inclusion proof = PATH(m, D[n]) (2.1.3), consistency proof = PROOF(m, D[n]) (2.1.4)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Returns the hash of the complete subtree of 2**level leaves starting at leaf index * 2**level.
SubtreeFn = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The compact range [0, size): hashes of the complete subtrees given by the bits of `size`.

    Appending costs O(1) amortised hashes; the root costs O(log n). This is what lets the head row
    keep the tree up to date without re-reading the log.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match its size")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the complete subtrees formed, as (level, index, hash)."""
        formed: list[tuple[int, int, bytes]] = []
        n = self.size
        node = leaf
        level = 0
        while n & 1:
            node = node_hash(self.hashes.pop(), node)
            level += 1
            n >>= 1
            formed.append((level, ((self.size + 1) >> level) - 1, node))
        self.hashes.append(node)
        self.size += 1
        return formed

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            node = node_hash(h, node)
        return node

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        hashes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return cls(size, hashes)


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH of a sequence of leaf hashes (streaming, via a frontier)."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


class TreeView:
    """Hashes of arbitrary ranges of a tree, from complete-subtree hashes supplied by storage."""

    def __init__(self, subtree: SubtreeFn) -> None:
        self._subtree = subtree
        self._memo: dict[tuple[int, int], bytes] = {}

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        n = hi - lo
        if n <= 0:
            return EMPTY_ROOT
        key = (lo, hi)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if n & (n - 1) == 0 and lo % n == 0:
            value = self._subtree(n.bit_length() - 1, lo // n)
        else:
            k = largest_power_of_two_below(n)
            value = node_hash(self.range_hash(lo, lo + k), self.range_hash(lo + k, hi))
        self._memo[key] = value
        return value

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) from RFC 9162 section 2.1.3.1."""
        if not 0 <= index < size:
            raise ValueError("leaf index outside the tree")
        return self._path(index, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m - lo < k:
            return self._path(m, lo, lo + k) + [self.range_hash(lo + k, hi)]
        return self._path(m, lo + k, hi) + [self.range_hash(lo, lo + k)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) from RFC 9162 section 2.1.4.1."""
        if not 0 <= old_size <= new_size:
            raise ValueError("old size must be between 0 and the new size")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self.range_hash(lo, hi)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return self._subproof(m, lo, lo + k, complete) + [self.range_hash(lo + k, hi)]
        return self._subproof(m - k, lo + k, hi, False) + [self.range_hash(lo, lo + k)]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` place `leaf` at `index` in the tree with `root`?"""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree (new_size, new_root) an extension of (old_size, old_root)?"""
    if old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
