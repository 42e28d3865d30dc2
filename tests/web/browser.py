#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (a pipe, no extra
packages) against a running `mailctl serve --http` and checks what a person
would see: the page loads; a message sent by `mailctl send` appears in the
list without a reload; a Chinese subject and attachment name display
correctly; an inline picture renders; a <script> in an HTML mail does not
run and a remote picture is not fetched; an attachment downloads byte-exact.
Writes a screenshot. Prints one line per check; exits non-zero on failure.

Usage: browser.py URL SMTP_PORT MAILCTL SCREENSHOT
"""

import base64
import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

DEADLINE = 60  # guard against a hung browser, never a measurement


class Browser:
    """Chromium with --remote-debugging-pipe: JSON messages ended by NUL on
    fds 3 (to the browser) and 4 (from it)."""

    def __init__(self, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
             "--disable-site-isolation-trials",
             "--disable-features=IsolateSandboxedIframes,site-per-process",
             "--window-size=1100,800", "--user-data-dir=" + profile, "about:blank"],
            close_fds=False, preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def _read_message(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser went away")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Page:
    """One tab."""

    def __init__(self, browser):
        self.b = browser
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ["Page.enable", "Runtime.enable", "Network.enable"]:
            self.call(domain)

    def call(self, method, **params):
        return self.b.call(method, self.session, **params)

    def eval(self, expression, context=None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.call("Runtime.evaluate", **params)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def until(self, expression, what, seconds=DEADLINE, context=None):
        """Polls until `expression` is truthy; returns the seconds taken."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            value = self.eval(expression, context)
            if value:
                return time.monotonic() - start
            time.sleep(0.05)
        try:
            seen = self.eval("document.URL + ' ' + document.documentElement.outerHTML.slice(0, 300)", context)
        except RuntimeError as e:
            seen = str(e)
        raise AssertionError(f"timed out waiting for {what}; the document: {seen}")


def png(width, height, rgb):
    """A small solid-colour PNG."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def start_tracker():
    """A local HTTP server that counts requests: the 'remote' picture."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


def html_mail(picture, tracker_port):
    picture_b64 = base64.encodebytes(picture).decode().replace("\n", "\r\n")
    html = ("<html><body><h1 id='greeting'>\u4f60\u597d HTML</h1>"
            "<script>parent.document.title='pwned'; document.title='pwned';</script>"
            "<img id='inline' src='cid:logo@test' alt='inline'>"
            f"<img id='remote' src='http://127.0.0.1:{tracker_port}/track.gif' alt='remote'>"
            "<img src=x onerror=\"document.title='pwned'\"></body></html>")
    return ("From: Web Test <web@example.com>\r\nTo: alice@example.com\r\n"
            "Subject: html with picture\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
            "--rel\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
            + "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@test>\r\n"
            "Content-Disposition: inline; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + picture_b64 + "--rel--\r\n").encode()


def send(mailctl, smtp, args, stdin=None):
    subprocess.run([mailctl, "send", "--server", f"127.0.0.1:{smtp}", "--tls", "none",
                    "--from", "web@example.com", "--to", "alice@example.com"] + args,
                   input=stdin, check=True, stdout=subprocess.DEVNULL, timeout=DEADLINE)


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        raise SystemExit(1)


def main():
    url, smtp, mailctl, screenshot = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    work = tempfile.mkdtemp()
    tracker, hits = start_tracker()
    browser = Browser(os.path.join(work, "profile"))
    try:
        run_checks(Page(browser), browser, url, smtp, mailctl, screenshot, work, tracker, hits)
    finally:
        browser.close()
        tracker.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def run_checks(page, browser, url, smtp, mailctl, screenshot, work, tracker, hits):
    page.call("Page.navigate", url=url)
    page.until("document.readyState === 'complete' && document.querySelector('#count').textContent !== ''",
               "the page to load")
    check("page loads", page.eval("document.title") == "mailctl inbox")

    attachment = bytes(range(256)) * 40 + b"\r\n\0end"
    name = os.path.join(work, "\u62a5\u544a 2024.bin")
    with open(name, "wb") as f:
        f.write(attachment)
    subject = "\u6d4b\u8bd5\u90ae\u4ef6 live"
    send(mailctl, smtp, ["--subject", subject, "--body", "\u4f60\u597d", "--attach", name])
    taken = page.until(f"[...document.querySelectorAll('#list .subject')].some(e => e.textContent.includes({json.dumps(subject)}))",
                       "the new message in the list", seconds=10)
    check("mail sent by mailctl send appears without reload", taken < 2, f"{taken:.2f} s")
    listed = page.eval("document.querySelector('#list li .subject').textContent")
    check("Chinese subject shown in the list", subject in listed, listed)

    page.eval("document.querySelector('#list li').click()")
    page.until("document.querySelector('#attachments a') !== null", "the message view")
    link = page.eval("document.querySelector('#attachments a').textContent")
    check("Chinese attachment name shown", link == "\u62a5\u544a 2024.bin", link)

    downloads = os.path.join(work, "downloads")
    os.mkdir(downloads)
    browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=downloads, eventsEnabled=True)
    page.eval("document.querySelector('#attachments a').click()")
    start = time.monotonic()
    while time.monotonic() - start < DEADLINE:
        done = [f for f in os.listdir(downloads) if not f.endswith(".crdownload")]
        if done:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    files = os.listdir(downloads)
    check("attachment downloads under its name", files == ["\u62a5\u544a 2024.bin"], repr(files))
    with open(os.path.join(downloads, files[0]), "rb") as f:
        check("attachment downloads byte-exact", f.read() == attachment)

    picture = png(24, 12, (200, 30, 30))
    send(mailctl, smtp, ["--raw"], stdin=html_mail(picture, tracker.server_address[1]))
    page.until("[...document.querySelectorAll('#list .subject')].some(e => e.textContent.includes('html with picture'))",
               "the HTML message in the list")
    page.eval("[...document.querySelectorAll('#list li')].find(li => li.textContent.includes('html with picture')).click()")
    page.until("!document.querySelector('#html').hidden", "the HTML frame")
    frame = None
    start = time.monotonic()
    while frame is None and time.monotonic() - start < DEADLINE:
        tree = page.call("Page.getFrameTree")["frameTree"]
        children = [c["frame"] for c in tree.get("childFrames", []) if c["frame"].get("url", "").endswith("/html")]
        frame = children[0]["id"] if children else None
        time.sleep(0.05)
    check("HTML body is in a frame", frame is not None)
    context = page.call("Page.createIsolatedWorld", frameId=frame, worldName="check")["executionContextId"]
    page.until("document.readyState === 'complete' && document.querySelector('h1') !== null",
               "the HTML body", context=context)
    greeting = page.eval("document.querySelector('h1').textContent", context)
    check("HTML body decoded", greeting == "\u4f60\u597d HTML", greeting)
    page.until("document.querySelector('img[alt=inline]').complete", "the inline picture", context=context)
    width = page.eval("document.querySelector('img[alt=inline]').naturalWidth", context)
    check("inline cid: picture renders", width == 24, f"width {width}")
    time.sleep(0.5)
    titles = [page.eval("document.title"), page.eval("document.title", context)]
    check("script in the HTML mail did not run", "pwned" not in titles, repr(titles))
    dialogs = [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
    check("no dialog opened", not dialogs)
    remote_requests = [e["params"]["request"]["url"] for e in browser.events
                       if e.get("method") == "Network.requestWillBeSent"
                       and str(tracker.server_address[1]) in e["params"]["request"]["url"]]
    check("remote picture not fetched", not hits and not remote_requests, repr(hits + remote_requests))

    shot = page.call("Page.captureScreenshot", format="png")["data"]
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot))
    print(f"screenshot: {screenshot}")
    keyboard_and_phone(page, screenshot)


def press(page, key, code):
    for kind in ["keyDown", "keyUp"]:
        page.call("Input.dispatchKeyEvent", type=kind, key=key, code=code,
                  text=key if kind == "keyDown" and len(key) == 1 else "")


def keyboard_and_phone(page, screenshot):
    shown = "document.querySelector('#headers').textContent"
    page.eval("document.activeElement.blur()")
    press(page, "j", "KeyJ")
    page.until(f"{shown}.includes('测试邮件')", "j to open the next message")
    press(page, "k", "KeyK")
    page.until(f"{shown}.includes('html with picture')", "k to open the previous message")
    press(page, "ArrowDown", "ArrowDown")
    page.until(f"{shown}.includes('测试邮件')", "the down arrow to open the next message")
    check("j/k and arrows move through the list", True)

    page.call("Emulation.setDeviceMetricsOverride", width=390, height=800, deviceScaleFactor=1, mobile=True)
    visible = "(id) => getComputedStyle(document.getElementById(id)).display !== 'none'"
    page.until(f"({visible})('back') && !({visible})('list-pane')", "the phone layout showing the message")
    wide = page.eval("document.documentElement.scrollWidth")
    check("message fits a phone's width", wide <= 390, f"scrollWidth {wide}")
    phone = screenshot.replace(".png", "-phone.png")
    with open(phone, "wb") as f:
        f.write(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))
    page.eval("document.getElementById('back').click()")
    page.until(f"({visible})('list-pane') && !({visible})('view-pane')", "the list after Back")
    check("phone layout switches between list and message", True)
    print(f"screenshot: {phone}")


if __name__ == "__main__":
    main()
