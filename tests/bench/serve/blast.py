#!/usr/bin/env python3
"""Sends TOTAL messages to an SMTP server from CLIENTS concurrent connections
(python smtplib, one connection per client) and prints 'SECONDS RATE'."""

import smtplib
import sys
import threading
import time

host, port, total, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = "".join(f"line {i:04d} of the benchmark message body, some filler text here\r\n" for i in range(30))
errors = []


def client(n, count):
    try:
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("bench")
        for i in range(count):
            msg = (f"From: bench{n}@example.org\r\nTo: inbox@example.org\r\n"
                   f"Subject: benchmark {n}-{i}\r\nMessage-ID: <{n}.{i}@bench>\r\n\r\n{body}")
            refused = s.sendmail(f"bench{n}@example.org", ["inbox@example.org"], msg)
            if refused:
                errors.append(refused)
        s.quit()
    except Exception as e:  # reported below, makes the run fail
        errors.append(repr(e))


per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
threads = [threading.Thread(target=client, args=(i, c)) for i, c in enumerate(per)]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
if errors:
    print("errors:", errors[:3], file=sys.stderr)
    sys.exit(1)
print(f"{elapsed:.2f} {total / elapsed:.0f}")
