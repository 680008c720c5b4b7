#!/usr/bin/env python3
"""Opens COUNT idle TCP connections to 127.0.0.1:PORT, then a last one that sends PING: when
its PONG arrives, the server has accepted every earlier connection (one listener accepts in
order). Prints "ready" and holds the connections until standard input closes.

    idle-clients.py PORT COUNT
"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
probe = socket.create_connection(("127.0.0.1", port))
probe.sendall(b"PING\r\n")
reply = b""
while not reply.endswith(b"\r\n"):
    chunk = probe.recv(64)
    if not chunk:
        sys.exit("the server closed the probe connection")
    reply += chunk
print("ready", flush=True)
sys.stdin.read()
