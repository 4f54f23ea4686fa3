#!/usr/bin/env python3
"""Opens N idle PostgreSQL client sessions (stdlib only) and holds them until SIGTERM/SIGINT.

Each session sends a v3 StartupMessage (trust auth expected), reads until ReadyForQuery and then
stays idle. When all N are ready it writes "READY <n>" to --ready-file (so a shell script can
measure the server's memory), then waits for a signal and closes the sessions with Terminate.

usage: idle_sessions.py --port P [--host 127.0.0.1] [--user postgres] [--database db]
                        [--count 500] --ready-file PATH [--timeout 60]
"""
import argparse
import os
import signal
import socket
import struct
import sys
import time


def startup_message(user, database):
    body = struct.pack("!I", 196608)  # protocol 3.0
    for key, value in (("user", user), ("database", database), ("application_name", "pgphase-bench-idle")):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection during startup")
        data += chunk
    return bytes(data)


def open_session(host, port, user, database, timeout):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(startup_message(user, database))
    while True:
        kind = recv_exact(sock, 1)
        (length,) = struct.unpack("!I", recv_exact(sock, 4))
        payload = recv_exact(sock, length - 4)
        if kind == b"R":
            (code,) = struct.unpack("!I", payload[:4])
            if code != 0:
                raise RuntimeError(f"server asked for authentication (code {code}); trust auth expected")
        elif kind == b"E":
            fields = dict((f[:1].decode(), f[1:].decode(errors="replace")) for f in payload.split(b"\0") if f)
            raise RuntimeError(f"server error: {fields.get('M', payload)!r}")
        elif kind == b"Z":
            sock.settimeout(None)
            return sock
        # S (ParameterStatus), K (BackendKeyData), N (NoticeResponse): ignore


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--database", default="postgres")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sessions = []
    started = time.monotonic()
    try:
        for i in range(args.count):
            if stop:
                return 1
            try:
                sessions.append(open_session(args.host, args.port, args.user, args.database, args.timeout))
            except Exception as exc:  # noqa: BLE001 - report which session failed and why
                print(f"idle_sessions: session {i + 1}/{args.count} to {args.host}:{args.port} failed: {exc}",
                      file=sys.stderr)
                return 1
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"READY {len(sessions)} {time.monotonic() - started:.2f}\n")
        os.replace(tmp, args.ready_file)
        while not stop:
            time.sleep(0.2)
        return 0
    finally:
        for s in sessions:
            try:
                s.sendall(b"X\0\0\0\4")
                s.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
