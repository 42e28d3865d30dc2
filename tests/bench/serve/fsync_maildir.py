"""An aiosmtpd handler that stores each message in a Maildir the way
`mailctl serve` does: written to tmp/, data synced, renamed into new/, new/
synced, and only then 250. The blocking file work runs in a thread pool so
the event loop keeps serving the other connections meanwhile (the fairest
set-up for aiosmtpd: concurrent deliveries overlap their fsyncs).

Used by tests/bench/serve.sh as
    python3 -m aiosmtpd -c fsync_maildir.FsyncMaildir DIR
with this folder on PYTHONPATH."""

import asyncio
import itertools
import os
import socket
import time


class FsyncMaildir:
    def __init__(self, root):
        self.root = root
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)
        self.counter = itertools.count()
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("FsyncMaildir needs the Maildir directory")
        return cls(args[0])

    def _store(self, data):
        now = time.time()
        unique = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self.counter)}.{self.host}"
        tmp = os.path.join(self.root, "tmp", unique)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.root, "new", unique))
        dfd = os.open(os.path.join(self.root, "new"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(None, self._store, envelope.original_content)
        return "250 OK"
