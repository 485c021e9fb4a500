"""Proofs from stored 1024-leaf subtree roots (control_plane.audit.subtrees): the same proofs as
from every leaf, the roots stored as signed heads pass them (and by the first proof for a log
that has none yet), and a wrong stored root never makes a wrong proof: the proof is made again
from the leaves, and the wrong roots are dropped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from control_plane import audit
from control_plane.audit import merkle, subtrees
from control_plane.store import get_engine

ENTRIES = 2600  # two complete subtrees of 1024 and a partial third


@pytest.fixture()
def log(db_url: str, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "1000")
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_SECONDS", "3600")
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    for i in range(ENTRIES):
        audit.record(action="release.transition", subject=f"service/s-{i % 7}", details={"step": i})
    audit.checkpoint()
    with get_engine().connect() as conn:
        return [bytes.fromhex(h) for h in conn.execute(sa.text("SELECT leaf_hash FROM audit_entries ORDER BY seq")).scalars()]


def _stored() -> dict[int, str]:
    with get_engine().connect() as conn:
        return dict(conn.execute(sa.text("SELECT start, root FROM audit_subtrees ORDER BY start")).all())  # type: ignore[arg-type]


def test_signed_heads_store_the_subtrees_they_complete_and_proofs_equal_the_leaves_proofs(log: list[bytes]) -> None:
    assert _stored() == {0: merkle.root(log[:1024]).hex(), 1024: merkle.root(log[1024:2048]).hex()}
    for seq in (1, 2, 1000, 1024, 1025, 1500, 2048, 2049, 2600):
        out = audit.prove(seq)
        assert out["verified"] and out["tree_size"] == ENTRIES
        assert out["inclusion_path"] == [p.hex() for p in merkle.inclusion_proof(log, seq - 1, ENTRIES)], seq
    heads = [h["size"] for h in audit.signed_heads()]
    assert heads == [1, 1001, 2001, ENTRIES], heads  # a head every 1000 entries after the first, and the last
    for old in heads[:-1]:
        out = audit.consistency(old)
        assert out["verified"]
        assert out["consistency_path"] == [p.hex() for p in merkle.consistency_proof(log, old, ENTRIES)], old


def test_the_first_proof_stores_the_roots_a_log_without_them_lacks(log: list[bytes]) -> None:
    subtrees.forget()  # as after the upgrade to migration 0006: a long log, no stored roots
    assert _stored() == {}
    out = audit.prove(7)
    assert out["inclusion_path"] == [p.hex() for p in merkle.inclusion_proof(log, 6, ENTRIES)]
    assert sorted(_stored()) == [0, 1024]


def test_a_wrong_stored_root_never_gives_a_wrong_proof_and_is_dropped(log: list[bytes]) -> None:
    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE audit_subtrees SET root = :r WHERE start = 0"), {"r": "ab" * 32})
    out = audit.prove(2100)  # its path includes the root of leaves [0, 2048), built from the stored two
    assert out["verified"]
    assert out["inclusion_path"] == [p.hex() for p in merkle.inclusion_proof(log, 2099, ENTRIES)]
    assert _stored() == {}  # the wrong roots are dropped, all of them
    assert audit.prove(2100)["inclusion_path"] == out["inclusion_path"]
    assert _stored()[0] == merkle.root(log[:1024]).hex()


def test_a_missing_entry_without_a_stored_root_is_named(log: list[bytes]) -> None:
    subtrees.forget()
    with get_engine().begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_entries WHERE seq = 1500"))
    from control_plane.errors import MlctlError

    with pytest.raises(MlctlError, match="entry #1500 is missing"):
        audit.prove(10)
    assert sorted(_stored()) == [0]  # the subtree with the gap is left out, the good one stored


def test_a_proof_is_made_against_the_largest_head_whose_signature_verifies(db_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from control_plane.audit import heads
    from control_plane.errors import NotFound

    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "100000")
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    for size in (10, 20, 30):
        while len(audit.entries()) < size:
            audit.record(action="a", subject=str(len(audit.entries())))
        audit.checkpoint()
    assert audit.prove(5)["tree_size"] == 30

    def forged(text: str) -> str:
        head = json.loads(text)
        return json.dumps({**head, "root": "00" * 32}) if head["size"] == 30 else text

    # Every copy of head #30 edited after signing: the database's row and checkpoint, the local file.
    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE audit_tree_heads SET head = :h WHERE size = 30"),
                     {"h": forged(conn.execute(sa.text("SELECT head FROM audit_tree_heads WHERE size = 30")).scalar_one())})
        conn.execute(sa.text("UPDATE audit_head SET checkpoint = :h"),
                     {"h": forged(conn.execute(sa.text("SELECT checkpoint FROM audit_head")).scalar_one())})
    local = heads.local_file()
    local.write_text("".join(forged(line) + "\n" for line in local.read_text().splitlines() if line.strip()))

    out = audit.prove(5)
    assert out["verified"] and out["tree_size"] == 20 and out["head"]["size"] == 20
    with pytest.raises(NotFound, match="not covered by a signed tree head"):
        audit.prove(25)
