"""Runs a command on a pseudo-terminal of a given width and prints what it
wrote there; exits with the command's status.

    python3 run.py COLUMNS [--sigint-on TEXT [--sigints N]] [--input TEXT] [--type-on TEXT KEYS]
        -- COMMAND ARGS...

With --sigint-on, SIGINT is sent to the command once TEXT has appeared
in its output, as a Ctrl-C at the terminal would (N times, 0.3 s apart,
with --sigints). With --input, TEXT is
typed at the terminal, one line each time the output has grown since the
last one (a prompt was shown). With --type-on, KEYS (which may hold a
Ctrl-D, \x04) are typed at once when TEXT has appeared in the output.
"""
import fcntl
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time


def interrupt_again(pid, times):
    for _ in range(times):
        time.sleep(0.3)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return


def main():
    args = sys.argv[1:]
    columns = int(args.pop(0))
    sigint_on = None
    sigints = 1
    typed = []
    type_on = None
    while args[0] != "--":
        if args[0] == "--sigint-on":
            sigint_on = args[1].encode()
        elif args[0] == "--sigints":
            sigints = int(args[1])
        elif args[0] == "--input":
            typed = [line.encode() + b"\n" for line in args[1].split("\n")]
        elif args[0] == "--type-on":
            type_on = (args[1].encode(), args[2].encode())
            args = args[1:]
        args = args[2:]
    assert args.pop(0) == "--"
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execvp(args[0], args)
    out = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if typed and not chunk.endswith(b"\n"):
            os.write(fd, typed.pop(0))
        if type_on is not None and type_on[0] in out:
            # Each line on its own, as typed: a Ctrl-D ends only an empty line.
            for line in type_on[1].splitlines(keepends=True):
                os.write(fd, line)
                time.sleep(0.05)
            type_on = None
        if sigint_on is not None and not sent and sigint_on in out:
            os.kill(pid, signal.SIGINT)
            sent = True
            if sigints > 1:
                threading.Thread(target=interrupt_again, args=(pid, sigints - 1), daemon=True).start()
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    sys.exit(os.waitstatus_to_exitcode(status))


main()
