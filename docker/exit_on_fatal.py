"""supervisord event listener: when a program gives up (FATAL), stop supervisord itself.

A container whose Nginx or uWSGI cannot start is better gone than half-alive: supervisord exits,
the container stops, and Docker's restart policy starts a clean one (see supervisord.conf).
"""
import os
import signal
import sys

from supervisor import childutils


def main() -> None:
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers["eventname"] == "PROCESS_STATE_FATAL":
            details, _ = childutils.eventdata(payload + "\n")
            print(f"exit_on_fatal: program {details.get('processname')} is FATAL; stopping supervisord",
                  file=sys.stderr, flush=True)
            os.kill(os.getppid(), signal.SIGTERM)
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
