from nazar_common.db.migrate import load_migrations


def test_each_backend_has_an_ordered_chain() -> None:
    for backend in ("postgres", "timescaledb"):
        chain = load_migrations(backend)  # type: ignore[arg-type]
        versions = [m.version for m in chain]
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        assert versions[:2] == [1, 2]
        assert all(m.sql.strip() for m in chain)


def test_backend_variants_differ() -> None:
    plain = {m.version: m for m in load_migrations("postgres")}
    ts = {m.version: m for m in load_migrations("timescaledb")}
    assert plain[1].checksum == ts[1].checksum  # shared core
    assert "PARTITION BY RANGE" in plain[2].sql
    assert "create_hypertable" in ts[2].sql


def test_writes_and_the_rollup_refresher_share_one_lock() -> None:
    """The plain-PostgreSQL write hook takes, shared, the advisory lock the
    refresher takes exclusively (a literal in SQL, a constant in Python)."""
    from nazar_common.db.backends import ROLLUP_LOCK_KEY

    [hook] = [m for m in load_migrations("postgres") if m.name == "prepare_write"]
    assert f"pg_advisory_xact_lock_shared({ROLLUP_LOCK_KEY})" in hook.sql
