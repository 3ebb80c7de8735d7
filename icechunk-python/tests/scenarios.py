"""End-to-end scenarios run against every kind of storage (memory, local, S3, Azure)."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import zarr

import icechunk


def read_array(session: icechunk.Session, path: str) -> npt.NDArray[np.generic]:
    """The whole array at ``path``, read through Zarr."""
    array = zarr.open_array(store=session.store, path=path, mode="r")
    return np.asarray(array[...])


def array_names(session: icechunk.Session) -> set[str]:
    """The names of the arrays in the root group."""
    group = zarr.open_group(store=session.store, mode="r")
    return set(group.array_keys())


def zarr_round_trip(storage: icechunk.Storage) -> None:
    """numpy arrays go through Zarr into a repository and come back, from the latest and
    from older snapshots (by snapshot id, by tag and by branch), also after reopening."""
    rng = np.random.default_rng(42)
    repo = icechunk.Repository.create(storage)

    # Version 1: a group with a float array (chunked: stored as chunk objects) and attributes.
    session = repo.writable_session("main")
    root = zarr.create_group(store=session.store, attributes={"title": "version 1"})
    temperature = root.create_array(
        "temperature", shape=(40, 30), chunks=(16, 16), dtype="float64", fill_value=0.0
    )
    v1 = rng.standard_normal((40, 30))
    temperature[:] = v1
    first = session.commit("version 1")
    repo.create_tag("v1", first)

    # Version 2, same session: change part of the array, add an integer array.
    temperature = zarr.open_array(store=session.store, path="temperature", mode="r+")
    v2 = v1.copy()
    v2[:10] = -1.0
    temperature[:10] = -1.0
    counts = zarr.create_array(
        store=session.store, name="counts", shape=(1000,), chunks=(256,), dtype="int32"
    )
    counts[:] = np.arange(1000, dtype="int32")
    zarr.open_group(store=session.store, mode="r+").attrs["title"] = "version 2"
    second = session.commit("version 2")
    assert session.snapshot_id == second

    # A branch from version 1 with its own change.
    repo.create_branch("experiment", first)
    exp = repo.writable_session("experiment")
    zarr.open_array(store=exp.store, path="temperature", mode="r+")[-1, :] = 99.0
    v_exp = v1.copy()
    v_exp[-1, :] = 99.0
    exp.commit("experiment")

    def check(repo: icechunk.Repository) -> None:
        for old in (
            repo.readonly_session(snapshot_id=first),
            repo.readonly_session(tag="v1"),
        ):
            np.testing.assert_array_equal(read_array(old, "temperature"), v1)
            assert array_names(old) == {"temperature"}
            assert zarr.open_group(store=old.store, mode="r").attrs["title"] == "version 1"
        latest = repo.readonly_session(branch="main")
        assert latest.snapshot_id == second
        np.testing.assert_array_equal(read_array(latest, "temperature"), v2)
        np.testing.assert_array_equal(read_array(latest, "counts"), np.arange(1000))
        assert read_array(latest, "counts").dtype == np.dtype("int32")
        assert zarr.open_group(store=latest.store, mode="r").attrs["title"] == "version 2"
        branch = repo.readonly_session(branch="experiment")
        np.testing.assert_array_equal(read_array(branch, "temperature"), v_exp)
        assert array_names(branch) == {"temperature"}

    check(repo)
    # Everything is in storage: a repository opened anew reads the same.
    check(icechunk.Repository.open(repo.storage))
    messages = [info.message for info in repo.ancestry(branch="main")]
    assert messages == ["version 2", "version 1", "Repository initialized"]


def write_array(session: icechunk.Session, name: str, value: int) -> None:
    """Writes array ``name`` filled with ``value`` (big enough to be stored as chunks)."""
    array = zarr.create_array(
        store=session.store, name=name, shape=(64, 64), chunks=(32, 32), dtype="int64"
    )
    array[:] = np.full((64, 64), value, dtype="int64")


def racing_commits(storage: icechunk.Storage) -> None:
    """Two sessions on one branch commit at the same moment. Exactly one wins; the loser
    gets a ConflictError naming the right parents and nothing of its commit is visible; the
    winner's data is intact; the loser retries on a fresh session and nothing is lost."""
    repo = icechunk.Repository.create(storage)
    setup = repo.writable_session("main")
    zarr.create_group(store=setup.store)
    base = setup.commit("base")

    sessions = {name: repo.writable_session("main") for name in ("alice", "bob")}
    for value, (name, session) in enumerate(sessions.items(), start=1):
        write_array(session, name, value)

    barrier = threading.Barrier(len(sessions))
    results: dict[str, str | icechunk.ConflictError] = {}

    def commit(name: str) -> None:
        barrier.wait()
        try:
            results[name] = sessions[name].commit(f"{name} writes")
        except icechunk.ConflictError as e:
            results[name] = e

    threads = [threading.Thread(target=commit, args=(name,)) for name in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2, results

    winners = [name for name, r in results.items() if isinstance(r, str)]
    losers = [name for name, r in results.items() if isinstance(r, icechunk.ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, results
    winner, loser = winners[0], losers[0]
    winner_id = results[winner]
    error = results[loser]
    assert isinstance(winner_id, str)
    assert isinstance(error, icechunk.ConflictError)
    assert isinstance(error, icechunk.IcechunkError)
    assert error.branch == "main"
    assert error.expected_parent == base
    assert error.actual_parent == winner_id
    assert base in str(error) and winner_id in str(error)

    # The branch holds the winner's commit only; the loser kept its changes.
    assert repo.lookup_branch("main") == winner_id
    assert sessions[loser].has_uncommitted_changes
    assert sessions[loser].snapshot_id == base
    main = repo.readonly_session(branch="main")
    assert array_names(main) == {winner}
    expected_value = 1 if winner == "alice" else 2
    np.testing.assert_array_equal(read_array(main, winner), np.full((64, 64), expected_value))

    # The loser retries on a fresh session: both commits are there.
    retry = repo.writable_session("main")
    assert retry.snapshot_id == winner_id
    write_array(retry, loser, 2 if loser == "bob" else 1)
    retry_id = retry.commit(f"{loser} writes, again")

    final = repo.readonly_session(branch="main")
    assert array_names(final) == {"alice", "bob"}
    np.testing.assert_array_equal(read_array(final, "alice"), np.full((64, 64), 1))
    np.testing.assert_array_equal(read_array(final, "bob"), np.full((64, 64), 2))
    history = [info.id for info in repo.ancestry(branch="main")]
    assert history[:3] == [retry_id, winner_id, base]
    assert len(history) == 4


def many_writers(storage: icechunk.Storage, writers: int = 4) -> None:
    """Several threads each commit their own array to one branch, retrying on conflicts
    with fresh sessions: every commit ends up in the history and no data is lost."""
    repo = icechunk.Repository.create(storage)
    setup = repo.writable_session("main")
    zarr.create_group(store=setup.store)
    base = setup.commit("base")
    barrier = threading.Barrier(writers)
    committed: dict[int, str] = {}
    conflicts: list[icechunk.ConflictError] = []
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _attempt in range(50):
                session = repo.writable_session("main")
                write_array(session, f"w{i}", i)
                try:
                    committed[i] = session.commit(f"writer {i}")
                    return
                except icechunk.ConflictError as e:
                    conflicts.append(e)
            raise AssertionError(f"writer {i} never committed")
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    assert sorted(committed) == list(range(writers))
    for e in conflicts:
        assert e.branch == "main"
        assert e.actual_parent is not None and e.actual_parent != e.expected_parent

    history = [info.id for info in repo.ancestry(branch="main")]
    assert set(committed.values()) <= set(history)
    assert len(history) == writers + 2 and history[-2] == base
    final = repo.readonly_session(branch="main")
    assert array_names(final) == {f"w{i}" for i in range(writers)}
    for i in range(writers):
        np.testing.assert_array_equal(read_array(final, f"w{i}"), np.full((64, 64), i))
