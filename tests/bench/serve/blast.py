#!/usr/bin/env python3
"""Sends TOTAL messages to an SMTP server from CLIENTS concurrent clients and
prints 'SECONDS RATE'. Each client is its own process (python smtplib, one
connection, one message after the other), so the clients do not share one
interpreter lock and the server, not the client, sets the pace."""

import multiprocessing
import smtplib
import sys
import time

BODY = "".join(f"line {i:04d} of the benchmark message body, some filler text here\r\n"
               for i in range(30))


def client(host, port, n, count, errors):
    try:
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("bench")
        for i in range(count):
            msg = (f"From: bench{n}@example.org\r\nTo: inbox@example.org\r\n"
                   f"Subject: benchmark {n}-{i}\r\nMessage-ID: <{n}.{i}@bench>\r\n\r\n{BODY}")
            refused = s.sendmail(f"bench{n}@example.org", ["inbox@example.org"], msg)
            if refused:
                errors.put(repr(refused))
        s.quit()
    except Exception as e:  # reported below, makes the run fail
        errors.put(repr(e))


def main():
    host, port, total, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    errors = multiprocessing.Queue()
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    procs = [multiprocessing.Process(target=client, args=(host, port, i, c, errors))
             for i, c in enumerate(per)]
    start = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    if not errors.empty() or any(p.exitcode != 0 for p in procs):
        print("errors:", errors.get() if not errors.empty() else "client died", file=sys.stderr)
        sys.exit(1)
    print(f"{elapsed:.2f} {total / elapsed:.0f}")


if __name__ == "__main__":
    main()
