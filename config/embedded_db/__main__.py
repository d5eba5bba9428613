"""`python -m config.embedded_db start|stop|status`: the embedded PostgreSQL by hand (`make db-stop`)."""
import sys

from . import PGDATA, _running, ensure, stop


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "start":
        print(f"embedded PostgreSQL ready: socket in {ensure()}")
    elif command == "stop":
        print("embedded PostgreSQL stopped" if stop() else "embedded PostgreSQL was not running")
    elif command == "status":
        running = _running(PGDATA)
        print(f"embedded PostgreSQL running (pid {running.pid}) in {PGDATA}" if running
              else f"embedded PostgreSQL not running ({PGDATA})")
        return 0 if running else 3
    else:
        print(f"usage: python -m config.embedded_db start|stop|status (not {command!r})", file=sys.stderr)
        return 2
    return 0


sys.exit(main(sys.argv[1:]))
