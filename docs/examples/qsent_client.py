#!/usr/bin/env python3
"""A one-file qsentd client, standard library only: a reference for integrators.

The protocol (docs/PROTOCOL.md) is newline-delimited JSON over a Unix stream socket: one
request object per line, exactly one answer line per request, in request order.

    from qsent_client import QsentClient
    with QsentClient("/run/qsentd/qsentd.sock") as q:
        print(q.classify("What a wonderful film"))        # {"label": ..., "score": ..., ...}
        print(q.classify_batch(["great", "awful"]))       # [{...}, {...}]
        print(q.pipelined(["a", "b", "c"], window=64))    # many texts, pipelined, in order
        print(q.info()["model"], q.stats()["requests"])

Command line: qsent_client.py [--socket PATH] ping|info|stats|reload|classify TEXT...
Exit status: 0 ok, 1 the daemon answered an error, 2 it is unreachable.
"""

import json
import os
import socket
import sys

DEFAULT_SOCKET = "/run/qsentd/qsentd.sock"


class QsentError(Exception):
    """The daemon answered {"error": {"code": ..., "message": ...}}."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class QsentClient:
    def __init__(self, path=None, timeout=60.0):
        self.path = path or os.environ.get("QSENT_SOCKET") or DEFAULT_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- lines ---------------------------------------------------------------------------

    def send(self, request):
        self.sock.sendall(json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def read_answer(self):
        """The next answer line as a dict; raises QsentError for error answers."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("qsentd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        answer = json.loads(line)
        if "error" in answer:
            raise QsentError(answer["error"].get("code", "error"), answer["error"].get("message", ""))
        return answer

    def ask(self, request):
        self.send(request)
        return self.read_answer()

    # -- requests ------------------------------------------------------------------------

    def ping(self):
        return self.ask({"op": "ping"})["ok"]

    def info(self):
        return self.ask({"op": "info"})

    def stats(self):
        return self.ask({"op": "stats"})

    def reload(self):
        return self.ask({"op": "reload"})

    def classify(self, text):
        return self.ask({"text": text})

    def classify_batch(self, texts):
        return self.ask({"texts": list(texts)})["results"]

    def pipelined(self, texts, window=64):
        """Classifies many texts with at most `window` unanswered requests; results in order."""
        texts = list(texts)
        out, sent = [], 0
        while len(out) < len(texts):
            while sent < len(texts) and sent - len(out) < window:
                self.send({"id": sent, "text": texts[sent]})
                sent += 1
            answer = self.read_answer()
            if answer.get("id") != len(out):
                raise ConnectionError(f"answer out of order: id {answer.get('id')}, expected {len(out)}")
            out.append(answer)
        return out


def main(argv):
    args = argv[1:]
    path = None
    if len(args) >= 2 and args[0] == "--socket":
        path, args = args[1], args[2:]
    if not args or args[0] not in ("ping", "info", "stats", "reload", "classify"):
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    try:
        with QsentClient(path) as q:
            cmd = args[0]
            if cmd == "classify":
                for a in q.pipelined(args[1:]):
                    print(json.dumps(a, separators=(",", ":")))
            else:
                print(json.dumps(getattr(q, cmd)(), separators=(",", ":")))
        return 0
    except QsentError as e:
        print(f"qsent_client: qsentd answered {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"qsent_client: cannot talk to qsentd at {path or os.environ.get('QSENT_SOCKET') or DEFAULT_SOCKET}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
