"""Launcher: run one command, then write its wall time, peak RSS and exit code to a file.

    python -I -S spawn.py RESULT_FILE CMD [ARG...]

Why a separate small process: on Linux a child's ru_maxrss starts at its parent's resident
size at fork, so a command forked straight from the harness (tens of MiB, more after
generating data) would report at least that much. Forked from this near-empty interpreter,
the floor is ~7 MiB. Imports only built-in modules so it stays that small.
"""

import os
import sys
import time


def main() -> int:
    result_file, cmd = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            print(f"spawn.py: cannot run {cmd[0]}: {exc}", file=sys.stderr)
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(result_file, "w") as out:
        out.write(f"{elapsed!r} {usage.ru_maxrss} {code}\n")  # ru_maxrss: KiB on Linux
    return 0


if __name__ == "__main__":
    sys.exit(main())
