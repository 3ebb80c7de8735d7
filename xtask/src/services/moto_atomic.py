"""moto's S3 server, with every request that writes holding one lock.

moto checks a conditional write (If-Match, If-None-Match) and then writes, without a lock, on a
threaded server: two racing conditional PUTs of one key can both succeed, which S3 and MinIO
never allow. icechunk's commit is such a write (a compare-and-swap of the branch's ref), so its
race tests failed now and then against moto. `cargo xtask docker-up` (native backend) runs moto
through this file, with moto_server's arguments. Reads are not serialized.
"""

import sys
import threading

from moto import server

_writes = threading.Lock()
_serve = server.DomainDispatcherApplication.__call__


def _one_write_at_a_time(self, environ, start_response):
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return _serve(self, environ, start_response)
    with _writes:
        return _serve(self, environ, start_response)


server.DomainDispatcherApplication.__call__ = _one_write_at_a_time

if __name__ == "__main__":
    sys.exit(server.main())
