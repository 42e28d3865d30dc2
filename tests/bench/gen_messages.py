#!/usr/bin/env python3
"""Writes N multipart messages of about 100 KB for tests/bench/extract.sh.

usage: gen_messages.py OUTDIR [N]

Deterministic. A third have gb18030 subjects and bodies, a third of the
attachments are named with RFC 2231 (charset gb18030 or utf-8, some split
into continuations), a third with RFC 2047, the rest plain ASCII. The
decoded attachment names are listed in OUTDIR/expected-names.txt (one per
line, UTF-8) so the benchmark can check which tools decoded them.
"""
import base64
import os
import random
import sys
import urllib.parse

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
os.makedirs(out, exist_ok=True)
rng = random.Random(4)

CN_WORDS = ["报告", "会议", "合同", "照片", "预算", "计划", "发票", "总结", "数据", "附件"]
EN_WORDS = ["report", "minutes", "contract", "photo", "budget", "plan", "invoice", "summary"]
EXTS = [("pdf", "application/pdf"), ("jpg", "image/jpeg"), ("docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("zip", "application/zip"), ("png", "image/png")]


def b64(data):
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\r\n"


def ew(text, cs):
    return "=?%s?B?%s?=" % (cs, base64.b64encode(text.encode(cs)).decode())


def rfc2231(name, cs, split):
    enc = urllib.parse.quote(name.encode(cs), safe="")
    if not split:
        return "filename*=%s''%s" % (cs, enc)
    # Split between two %XX escapes, possibly inside a character.
    cut = (len(enc) // 3 // 2) * 3
    return "filename*0*=%s''%s;\r\n filename*1*=%s" % (cs, enc[:cut], enc[cut:])


expected = []
for i in range(count):
    chinese = i % 3 == 0
    cs = "gb18030" if chinese else "utf-8"
    subject = ("%s第%d号" % (rng.choice(CN_WORDS), i)) if chinese else "Message %d about %s" % (i, rng.choice(EN_WORDS))
    body = (("这是第%d封测试邮件的正文。" % i) * 40) if chinese else (("This is the body of message %d. " % i) * 40)
    html = "<html><body><p>%s</p></body></html>" % body
    boundary = "=_mix_%06d" % i
    alt = "=_alt_%06d" % i
    lines = [
        "From: %s <sender%d@example.com>" % (ew("发件人", "gb18030") if chinese else "Sender", i),
        "To: reader@example.org",
        "Subject: %s" % (ew(subject, cs) if chinese else subject),
        "Date: Mon, 02 Mar 2026 10:%02d:%02d +0000" % (i // 60 % 60, i % 60),
        "Message-ID: <bench-%d@example.com>" % i,
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="%s"' % boundary,
        "",
        "--" + boundary,
        'Content-Type: multipart/alternative; boundary="%s"' % alt,
        "",
        "--" + alt,
        'Content-Type: text/plain; charset="%s"' % cs,
        "Content-Transfer-Encoding: base64",
        "",
    ]
    msg = "\r\n".join(lines) + "\r\n" + b64(body.encode(cs))
    msg += "--%s\r\nContent-Type: text/html; charset=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" % (alt, cs)
    msg += b64(html.encode(cs)) + "--%s--\r\n" % alt
    n_att = 1 + i % 3
    size_each = (72_000 - len(msg)) // n_att
    for k in range(n_att):
        ext, ctype = EXTS[(i + k) % len(EXTS)]
        style = (i + k) % 3
        if style == 0:
            name = "%s-%d-%d.%s" % (rng.choice(CN_WORDS), i, k, ext)
            ncs = "gb18030" if k % 2 == 0 else "utf-8"
            disp = rfc2231(name, ncs, split=(i % 2 == 0))
            ct_name = ""
        elif style == 1:
            name = "%s %d-%d.%s" % (rng.choice(CN_WORDS), i, k, ext)
            disp = 'filename="%s"' % ew(name, "gb18030")
            ct_name = '; name="%s"' % ew(name, "gb18030")
        else:
            name = "%s-%d-%d.%s" % (rng.choice(EN_WORDS), i, k, ext)
            disp = 'filename="%s"' % name
            ct_name = '; name="%s"' % name
        expected.append(name)
        data = rng.randbytes(size_each)
        msg += "--%s\r\nContent-Type: %s%s\r\nContent-Disposition: attachment;\r\n %s\r\nContent-Transfer-Encoding: base64\r\n\r\n" % (
            boundary, ctype, ct_name, disp)
        msg += b64(data)
    msg += "--%s--\r\n" % boundary
    with open(os.path.join(out, "msg%04d.eml" % i), "wb") as f:
        f.write(msg.encode("ascii"))

with open(os.path.join(out, "expected-names.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(expected) + "\n")
