#!/usr/bin/env python3
"""Python's email package as an extraction baseline for extract.sh.

usage: extract_email.py OUTDIR MESSAGE...

One process; each message into OUTDIR/<stem>/, every non-multipart part
written under its decoded file name (directory parts removed) or partN.
"""
import os
import sys
from email import policy
from email.parser import BytesParser

out = sys.argv[1]
parser = BytesParser(policy=policy.default)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        msg = parser.parse(f)
    folder = os.path.join(out, os.path.splitext(os.path.basename(path))[0])
    os.makedirs(folder)
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        name = part.get_filename()
        name = os.path.basename(name.replace("\\", "/")).lstrip(".") if name else ""
        name = name or "part%d" % n
        data = part.get_payload(decode=True) or b""
        with open(os.path.join(folder, name), "xb") as f:
            f.write(data)
