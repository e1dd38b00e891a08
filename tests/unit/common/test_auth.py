from nazar_common.auth import Scope, generate_key, grants, hash_secret, split_key, verify_secret


def test_generated_key_roundtrip() -> None:
    new = generate_key()
    parts = split_key(new.plaintext)
    assert parts is not None
    key_id, secret = parts
    assert key_id == new.key_id
    assert verify_secret(secret, new.secret_hash)
    assert not verify_secret(secret + "x", new.secret_hash)
    assert new.secret_hash == hash_secret(secret)
    assert secret not in new.secret_hash


def test_split_rejects_foreign_tokens() -> None:
    assert split_key("Bearer abc") is None
    assert split_key("nzr__secret") is None
    assert split_key("xyz_a_b") is None


def test_scopes() -> None:
    assert grants({Scope.ADMIN}, Scope.INGEST)
    assert grants({Scope.ADMIN}, Scope.READ)
    assert not grants({Scope.INGEST}, Scope.READ)
    assert not grants({Scope.READ}, Scope.ADMIN)
    assert grants({Scope.READ, Scope.INGEST}, Scope.INGEST)
    assert grants({Scope.RULES}, Scope.READ) and grants({Scope.ADMIN}, Scope.RULES)
    assert not grants({Scope.RULES}, Scope.ADMIN) and not grants({Scope.RULES}, Scope.INGEST)
