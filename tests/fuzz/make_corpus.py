#!/usr/bin/env python3
"""Writes the seed corpus of protocol_fuzz into corpus/ (run from anywhere; output is stable).

Each file is two control bytes (byte 0 bit 0: 0 frontend, 1 backend; bits 3-4 both set: every
message streams through the splitter, else byte 1 picks each message's disposition; byte 1:
chunk-size and disposition seed) followed by realistic wire bytes.
"""
import os
import struct

FRONTEND, BACKEND = 0, 1
STREAM_ALL = 0x18


def msg(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def first_packet(code, body=b""):
    return struct.pack("!Ii", len(body) + 8, code) + body


def i16(v):
    return struct.pack("!h", v)


def i32(v):
    return struct.pack("!i", v)


def row_description():
    fields = [("id", 23, 4), ("name", 25, -1)]
    body = i16(len(fields))
    for n, (name, oid, size) in enumerate(fields, 1):
        body += cstr(name) + i32(16384) + i16(n) + i32(oid) + i16(size) + i32(-1) + i16(0)
    return msg(b"T", body)


def data_row(*cols):
    body = i16(len(cols))
    for c in cols:
        body += i32(-1) if c is None else i32(len(c)) + c
    return msg(b"D", body)


def error_response(sqlstate, text):
    fields = [("S", "ERROR"), ("V", "ERROR"), ("C", sqlstate), ("M", text), ("F", "parse_relation.c"),
              ("L", "1392"), ("R", "parserOpenTable")]
    return msg(b"E", b"".join(cstr(k + v) for k, v in fields) + b"\0")


SEEDS = {
    "startup_message": (FRONTEND, 7, first_packet(196608, b"".join(
        cstr(s) for s in ["user", "alice", "database", "shop", "application_name", "psql",
                          "client_encoding", "UTF8"]) + b"\0")),
    "ssl_request": (FRONTEND, 3, first_packet(80877103)),
    "cancel_request": (FRONTEND, 1, first_packet(80877102, i32(4242) + i32(-559038737))),
    "query": (FRONTEND, 5, msg(b"Q", cstr("SELECT id, name FROM t WHERE id < 10"))),
    "extended_batch": (FRONTEND, 11, msg(b"P", cstr("s1") + cstr("SELECT $1::int4") + i16(1) + i32(23))
                       + msg(b"B", cstr("") + cstr("s1") + i16(0) + i16(1) + i32(2) + b"42" + i16(0))
                       + msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + i32(0)) + msg(b"S")),
    "backend_response": (BACKEND, 13, msg(b"1") + msg(b"2") + row_description()
                         + b"".join(data_row(str(i).encode(), b"x" * (i * 9)) for i in range(6))
                         + data_row(b"6", None) + msg(b"C", cstr("SELECT 7")) + msg(b"Z", b"I")),
    "backend_response_streamed": (BACKEND | STREAM_ALL, 13, msg(b"1") + msg(b"2") + row_description()
                                  + data_row(b"1", b"y" * 100) + msg(b"C", cstr("SELECT 1"))
                                  + msg(b"Z", b"I")),
    "extended_batch_streamed": (FRONTEND | STREAM_ALL, 6, msg(b"P", cstr("") + cstr("SELECT 1") + i16(0))
                                + msg(b"B", cstr("") + cstr("") + i16(0) + i16(0) + i16(0))
                                + msg(b"E", cstr("") + i32(0)) + msg(b"S")),
    "error_response": (BACKEND, 2, error_response("42P01", 'relation "nope" does not exist')
                       + msg(b"Z", b"E")),
    "auth_sasl": (BACKEND, 4, msg(b"R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256")
                                  + b"\0")),
    "startup_response": (BACKEND, 9, msg(b"R", i32(0)) + msg(b"S", cstr("server_version") + cstr("15.8"))
                         + msg(b"K", i32(4242) + i32(-559038737)) + msg(b"Z", b"I")),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, (direction, seed, payload) in SEEDS.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(bytes([direction, seed]) + payload)


if __name__ == "__main__":
    main()
