#!/usr/bin/env python3
"""Play LinuxKit's init against an fd intake socket, without any of
ringlogd's code: what init does for onboot containers and services.

Like init, it sends one datagram per fd from an unbound SOCK_DGRAM socket,
the source name as payload (no NUL) and the fd as SCM_RIGHTS; onboot
containers get socketpair ends, services the read ends of FIFOs.

  fake_init.py services SOCKET COUNT LINES
      COUNT services at once, each with a socketpair end and a FIFO read end
      (stdout on one, stderr on the other, alternating), named
      onboot.svcNNN.out and onboot.svcNNN; then LINES lines on each, written
      round-robin over all of them, so every fd's lines interleave with
      every other's. Line J of svcNNN's stdout is "svcNNN out J".

  fake_init.py boot SOCKET DIR ONBOOT SERVICES LINES
      A boot: ONBOOT containers (boot0, boot1, ...) run one after another,
      each a real process writing LINES lines to stdout and to stderr over
      socketpairs (onboot.bootN.out, onboot.bootN); then SERVICES services
      (svcN.out, svcN) started together over FIFOs made in DIR, each a real
      process writing LINES lines to each. Waits for all of them.
      Line J of bootN's stderr is "bootN err J".
"""

import os
import socket
import subprocess
import sys


def sender(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # Python 3.11's socket.send_fds ignores its address argument, so the
    # (still unbound) socket is connected instead of using sendto.
    s.connect(path)
    return s


def pass_fd(s, name, fd):
    socket.send_fds(s, [name.encode()], [fd])


def socketpair_end(s, name):
    """Pass one end of a new socketpair under name; return the other."""
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pass_fd(s, name, theirs.fileno())
    theirs.close()
    return ours.detach()


def fifo_end(s, name, path):
    """Make a FIFO, pass its read end under name; return its write end."""
    os.mkfifo(path)
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY)
    pass_fd(s, name, r)
    os.close(r)
    return w


def write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


def services(path, count, lines):
    import tempfile

    s = sender(path)
    streams = []  # (fd, text prefix)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            name = f"svc{i:03}"
            out_name, err_name = f"onboot.{name}.out", f"onboot.{name}"
            if i % 2 == 0:
                out = socketpair_end(s, out_name)
                err = fifo_end(s, err_name, os.path.join(tmp, name))
            else:
                out = fifo_end(s, out_name, os.path.join(tmp, name))
                err = socketpair_end(s, err_name)
            streams.append((out, f"{name} out"))
            streams.append((err, f"{name} err"))
        for j in range(lines):
            for fd, prefix in streams:
                write_all(fd, f"{prefix} {j}\n".encode())
        for fd, _ in streams:
            os.close(fd)


def program(name, lines):
    return [
        "sh",
        "-c",
        'i=0; while [ $i -lt "$2" ]; do echo "$1 out $i"; echo "$1 err $i" >&2; '
        "i=$((i+1)); done",
        "sh",
        name,
        str(lines),
    ]


def boot(path, tmp, onboot, nservices, lines):
    s = sender(path)
    for i in range(onboot):
        name = f"boot{i}"
        out = socketpair_end(s, f"onboot.{name}.out")
        err = socketpair_end(s, f"onboot.{name}")
        subprocess.run(
            program(name, lines), stdin=subprocess.DEVNULL, stdout=out, stderr=err, check=True
        )
        os.close(out)
        os.close(err)
    running = []
    for i in range(nservices):
        name = f"svc{i}"
        out = fifo_end(s, f"{name}.out", os.path.join(tmp, f"{name}.out"))
        err = fifo_end(s, name, os.path.join(tmp, name))
        running.append(
            subprocess.Popen(program(name, lines), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        )
        os.close(out)
        os.close(err)
    for p in running:
        if p.wait() != 0:
            sys.exit(f"service exited {p.returncode}")


def main():
    cmd = sys.argv[1]
    if cmd == "services":
        services(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "boot":
        boot(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
