"""A TCP listener that counts what reaches it: the proof that a refused connection was never made."""

import socket
import threading


class Listener:
    """A TCP server on a free loopback port that counts the connections it accepts. It answers
    `reply` to each (keeping the first line of each request it read: `request_lines`), or
    nothing at all (a remote end that stopped answering)."""

    def __init__(self, reply=None):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.reply = reply
        self.accepted = 0
        self.request_lines = []
        self.open = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            self.open.append(connection)
            if self.reply is not None:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := connection.recv(65536)):
                    head += chunk
                self.request_lines.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                connection.sendall(self.reply)
                connection.close()

    def close(self):
        self.server.close()
        for connection in self.open:
            connection.close()
