"""supervisord event listener: when a program cannot stay up, stop supervisord itself.

A container whose Nginx or uWSGI keeps dying is better gone than half-alive: supervisord exits,
the container stops, and Docker's restart policy starts a clean one (see supervisord.conf).
"Cannot stay up" is either supervisord giving up on starting it (FATAL) or CRASH_LOOP_EXITS
unexpected exits within CRASH_LOOP_SECONDS (a program that dies after its startsecs is otherwise
restarted forever). A single crash is just restarted.
"""
import collections
import os
import signal
import sys
import time

from supervisor import childutils

CRASH_LOOP_EXITS = 5
CRASH_LOOP_SECONDS = 60.0
# Programs whose failure must not take the container down: the replica keeps serving what it has,
# and /readyz says the puller is failing or stalled.
NOT_ESSENTIAL = frozenset({"puller"})


def main() -> None:
    exits = collections.defaultdict(collections.deque)
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        details, _ = childutils.eventdata(payload + "\n")
        name = details.get("processname", "?")
        reason = None
        if name in NOT_ESSENTIAL:
            pass
        elif headers["eventname"] == "PROCESS_STATE_FATAL":
            reason = "could not be started"
        elif headers["eventname"] == "PROCESS_STATE_EXITED" and details.get("expected") == "0":
            now = time.monotonic()
            recent = exits[name]
            recent.append(now)
            while recent and now - recent[0] > CRASH_LOOP_SECONDS:
                recent.popleft()
            if len(recent) >= CRASH_LOOP_EXITS:
                reason = f"exited {len(recent)} times within {CRASH_LOOP_SECONDS:g} s"
        if reason:
            print(f"exit_on_fatal: program {name} {reason}; stopping supervisord", file=sys.stderr, flush=True)
            os.kill(os.getppid(), signal.SIGTERM)
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
