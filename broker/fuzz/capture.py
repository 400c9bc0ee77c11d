"""Records real client traffic as a seed corpus for the `request` fuzz target.

A TCP relay between clients and a broker that saves every request frame (without its
4-byte length prefix) as one file named by its SHA-1. Start the broker advertising the
relay's address, so clients come back through the relay after bootstrap:

    agentbus broker --listen 127.0.0.1:19092 --advertise 127.0.0.1:19093 --data-dir DIR
    python3 capture.py --listen 19093 --broker 19092 --out corpus/request
"""

import argparse
import hashlib
import os
import socket
import threading


def save(out, frame):
    name = hashlib.sha1(frame).hexdigest()
    with open(os.path.join(out, name), "wb") as f:
        f.write(frame)


def pump(src, dst, out):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if out is None:
                continue
            buf += data
            while len(buf) >= 4:
                n = int.from_bytes(buf[:4], "big")
                if len(buf) < 4 + n:
                    break
                save(out, buf[4 : 4 + n])
                buf = buf[4 + n :]
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--broker", type=int, required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    server = socket.create_server(("127.0.0.1", args.listen))
    while True:
        client, _ = server.accept()
        broker = socket.create_connection(("127.0.0.1", args.broker))
        threading.Thread(target=pump, args=(client, broker, args.out), daemon=True).start()
        threading.Thread(target=pump, args=(broker, client, None), daemon=True).start()


if __name__ == "__main__":
    main()
