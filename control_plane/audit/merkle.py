"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their verification.

Leaves are hashed as ``SHA-256(0x00 || entry)`` and inner nodes as ``SHA-256(0x01 || left || right)``,
so a leaf can never be passed off as an inner node (the second-preimage attack on plain Merkle
trees). The tree over ``n`` leaves splits at the largest power of two below ``n`` (RFC 9162
§2.1.1), which makes it append-only: a tree of size ``m`` is a prefix of every larger tree, and a
consistency proof shows it with O(log n) hashes.

:class:`CompactRange` keeps only the roots of the perfect subtrees ("peaks") of the tree so far:
appending is one hash on average, and the root of the current tree is O(log n). That is how a
signed tree head is issued without re-reading the log, and how verification checks every head
while streaming the leaves once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) per RFC 9162 §2.1.1
_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The peaks of a tree being built left to right: ``peaks[i]`` covers ``sizes[i]`` leaves,
    sizes strictly decreasing powers of two whose sum is ``size``."""

    __slots__ = ("peaks", "size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} peaks, not {len(peaks)}")
        self.size = size
        self.peaks = list(peaks)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merge equal-sized peaks like a binary counter carries."""
        node = leaf
        size = self.size
        peaks = self.peaks
        while size & 1:
            node = _sha256(_NODE + peaks.pop() + node).digest()
            size >>= 1
        peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves so far: fold the peaks from the right (the smallest subtree is the
        rightmost child at every level where the size is not a power of two)."""
        if not self.peaks:
            return EMPTY_ROOT
        node = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            node = _sha256(_NODE + peak + node).digest()
        return node

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.peaks)


def pyramid(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every complete aligned subtree over ``leaves``, level by level: ``levels[j][i]`` is the root
    of leaves ``[i * 2**j, (i + 1) * 2**j)``. One list comprehension per level hashes a whole batch
    (the same ``n - 1`` node hashes as appending them one by one, without a method call per leaf):
    what parallel verification builds its chunks with."""
    levels = [list(leaves)]
    while len(level := levels[-1]) > 1:
        levels.append([_sha256(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)])
    return levels


def peaks_at(levels: Sequence[Sequence[bytes]], k: int) -> list[bytes]:
    """The compact range of the first ``k`` leaves of a :func:`pyramid`: for each bit of ``k``, from
    the highest, the aligned subtree that starts where the larger ones end."""
    out: list[bytes] = []
    start = 0
    for j in range(k.bit_length() - 1, -1, -1):
        if k >> j & 1:
            out.append(levels[j][start >> j])
            start += 1 << j
    return out


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf)
    return cr.root()


RootOf = Callable[[int, int], bytes]  # (lo, hi) -> MTH(D[lo:hi])


def _root_of(leaves: Sequence[bytes]) -> RootOf:
    return lambda lo, hi: root(leaves[lo:hi])


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf ``index`` in the first ``size`` leaves."""
    size = len(leaves) if size is None else size
    if not size <= len(leaves):
        raise ValueError(f"a tree of size {size} needs {size} leaves, not {len(leaves)}")
    return inclusion_path(_root_of(leaves), index, size)


def inclusion_path(root_of: RootOf, index: int, size: int) -> list[bytes]:
    """:func:`inclusion_proof` over any source of subtree roots (stored 1024-leaf subtrees make a
    proof at a million entries read a thousand rows, not every leaf: ``audit.subtrees``)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    # Walk down from the root, collecting the sibling subtree at each split; the path is listed
    # leaf-upwards, so the collected hashes are reversed at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(root_of(lo + k, hi))
            hi = lo + k
        else:
            path.append(root_of(lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: shows the tree of ``old_size`` leaves is a prefix of the
    tree of ``new_size`` leaves."""
    new_size = len(leaves) if new_size is None else new_size
    if not new_size <= len(leaves):
        raise ValueError(f"a tree of size {new_size} needs {new_size} leaves, not {len(leaves)}")
    return consistency_path(_root_of(leaves), old_size, new_size)


def consistency_path(root_of: RootOf, old_size: int, new_size: int) -> list[bytes]:
    """:func:`consistency_proof` over any source of subtree roots."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(root_of(lo, hi))
            break
        k = _split(n)
        if m <= k:
            proof.append(root_of(lo + k, hi))
            hi = lo + k
        else:
            proof.append(root_of(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


class ProofError(ValueError):
    """A proof that does not verify; the message says which check failed."""


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (compare it with a signed head)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
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
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> None:
    if root_from_inclusion(leaf, index, size, proof) != expected_root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the old tree is a prefix of the new one."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency between sizes {old_size} and {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    path = list(proof)
    if not path:
        raise ProofError("an empty consistency proof between different sizes")
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
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
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root (size {old_size}): the log was rewritten")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root (size {new_size})")
