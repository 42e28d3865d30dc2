# Helpers of the server benchmarks (tests/bench/serve.sh, tests/bench/web.sh),
# sourced: a process's peak memory, a free loopback port, waiting for a port.

# The peak resident set (kB) of a running process.
vm_peak() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# A loopback port nobody listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for something to listen on 127.0.0.1:PORT; fails after.
wait_port() {
    python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(600):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}
