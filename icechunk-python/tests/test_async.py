"""Storage I/O runs on icechunk's own runtime: awaiting a store call never blocks the asyncio
event loop, and blocking calls release the GIL while they wait."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import zarr
import zarr.api.asynchronous
from zarr.core.buffer import default_buffer_prototype

import icechunk
from icechunk import Repository, Storage

BUCKET = "bucket"


class GatedObjectServer:
    """A minimal read-only S3 endpoint serving the files of a local repository directory.

    Requests for chunk objects (``chunks/...``) are held until :meth:`release` is called, so a
    test controls exactly how long a read stays in flight.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gate = threading.Event()
        self.chunk_requested = threading.Event()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.answer(with_body=True)

            def do_HEAD(self) -> None:
                self.answer(with_body=False)

            def answer(self, *, with_body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                key = path.removeprefix(f"/{BUCKET}/")
                server.requests.append(key)
                if key.startswith("chunks/"):
                    server.chunk_requested.set()
                    server.gate.wait(timeout=20)
                file = server.root / key
                if not key or ".." in key.split("/") or not file.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.md5(data).hexdigest()}"')
                self.send_header(
                    "Last-Modified", email.utils.formatdate(file.stat().st_mtime, usegmt=True)
                )
                self.end_headers()
                if with_body:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}"

    def release(self) -> None:
        self.gate.set()


@contextmanager
def serve(root: Path) -> Iterator[GatedObjectServer]:
    server = GatedObjectServer(root)
    server.thread.start()
    try:
        yield server
    finally:
        server.release()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=10)


def remote_storage(server: GatedObjectServer) -> Storage:
    return Storage.s3(
        BUCKET,
        endpoint=server.url,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        allow_http=True,
        max_retries=0,
        retry_timeout_secs=60,
    )


@pytest.fixture
def repo_dir(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A local repository whose ``main`` holds one value big enough to be a chunk object."""
    root = tmp_path / "repo"
    repo = Repository.create(Storage.local(root))
    session = repo.writable_session("main")
    payload = bytes(range(256)) * 16

    async def write() -> None:
        await session.set("data/c/0", payload)

    asyncio.run(write())
    return root, session.commit("payload"), payload


async def test_awaiting_a_store_read_does_not_block_the_event_loop(
    repo_dir: tuple[Path, str, bytes],
) -> None:
    root, snapshot, payload = repo_dir
    with serve(root) as server:
        # Blocking calls release the GIL: the server thread (Python code) answers them.
        repo = Repository.open(remote_storage(server))
        store = repo.readonly_session(snapshot_id=snapshot).store
        assert server.requests, "the repository was not read through the server"

        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        read = asyncio.create_task(store.get("data/c/0", default_buffer_prototype()))

        # The read reaches the server and is held there; meanwhile this coroutine and the
        # ticker keep running on the same event loop.
        async with asyncio.timeout(30):
            # Polls a threading.Event that the server thread sets.
            while not server.chunk_requested.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        before = ticks
        await asyncio.sleep(0.2)
        assert not read.done(), "the read finished although its request was held"
        assert ticks - before >= 5, f"the event loop stalled: {ticks - before} ticks in 0.2s"

        server.release()
        async with asyncio.timeout(30):
            value = await read
        stop.set()
        await ticking
        assert value is not None and value.to_bytes() == payload


async def test_concurrent_reads_overlap(repo_dir: tuple[Path, str, bytes]) -> None:
    """Many reads are in flight at once (not one after the other): all of them are held at
    the server together, then all complete."""
    root, snapshot, payload = repo_dir
    with serve(root) as server:
        repo = Repository.open(remote_storage(server))
        sessions = [repo.readonly_session(snapshot_id=snapshot) for _ in range(4)]
        reads = [
            asyncio.create_task(s.store.get("data/c/0", default_buffer_prototype()))
            for s in sessions
        ]
        async with asyncio.timeout(30):
            while sum(r.startswith("chunks/") for r in server.requests) < len(reads):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert not any(r.done() for r in reads)
        server.release()
        async with asyncio.timeout(30):
            values = await asyncio.gather(*reads)
        assert all(v is not None and v.to_bytes() == payload for v in values)


async def test_zarr_async_api_through_the_store() -> None:
    repo = Repository.create(Storage.memory())
    session = repo.writable_session("main")
    array = await zarr.api.asynchronous.create_array(
        store=session.store, name="a", shape=(100,), chunks=(10,), dtype="float32"
    )
    await array.setitem(slice(None), np.linspace(0, 1, 100, dtype="float32"))
    snapshot = session.commit("async write")
    reader = repo.readonly_session(snapshot_id=snapshot)
    opened = await zarr.api.asynchronous.open_array(store=reader.store, path="a", mode="r")
    values = np.asarray(await opened.getitem(slice(None)), dtype=np.float64)
    np.testing.assert_allclose(values, np.linspace(0, 1, 100), rtol=1e-6)


async def test_errors_surface_from_awaitables() -> None:
    session = Repository.create(Storage.memory()).readonly_session()
    with pytest.raises(icechunk.ReadOnlySessionError):
        await session.set("k", b"v")
    with pytest.raises(icechunk.InvalidKeyError):
        await session.get("")
