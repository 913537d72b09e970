"""Where a loaded server's request threads wait for a CPU: `perf sched record` for a
few seconds, then, from the trace, the time from each wakeup (`sched_waking`, or a
preemption) of one of the server's threads to the moment it runs, and what ran on
that CPU meanwhile.

Used by soak.py (`--sched-trace SECS`); also runnable on a saved trace:
    python3 bench/chaos/schedtrace.py perf.data SERVER_PID

The tail of a request over loopback is a chain of such wakeups (the runtime's worker,
SQLite's connection thread, the worker again), so a request is slow when one of them
waits. The blame table says who held the CPU during the waits over 0.5 ms: the load
drivers, the server's own threads, or nobody (`idle`: the CPU was idle and the
virtual CPU took that long to wake, which is the host's doing).
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys

REQUEST_THREADS = ("tokio-rt-worker", "sqlx-sqlite-wor")
SLOW_MS = 0.5

_EVENT = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")
_SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) prev_prio=(\d+) prev_state=(\S+) ==> "
                     r"next_comm=(.*?) next_pid=(\d+) next_prio=(\d+)")
_WAKE = re.compile(r"comm=(.*?) pid=(\d+) prio=(\d+) target_cpu=(\d+)")


def record(seconds: float, path: str) -> subprocess.Popen:
    """Starts a system-wide scheduler trace of `seconds` into `path`, and writes every
    thread's scheduling class (`TS` normal, `IDL` SCHED_IDLE) to `path + ".classes"`."""
    classes = subprocess.run(["ps", "-eLo", "tid=,cls="], capture_output=True, text=True).stdout
    with open(path + ".classes", "w") as f:
        f.write(classes)
    return subprocess.Popen(["perf", "sched", "record", "-a", "-o", path, "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_classes(path: str) -> dict[int, str]:
    try:
        with open(path + ".classes") as f:
            return {int(t): c for t, c in (line.split() for line in f if len(line.split()) == 2)}
    except OSError:
        return {}


def group(comm: str) -> str:
    """A thread's name without its number (`merge_thread_2` → `merge_thread`)."""
    return re.sub(r"[-_/]?\d+$", "", comm)


def analyse(lines, pid: int, classes: dict[int, str] | None = None) -> dict:
    """Wakeup-to-run delays of the server's threads, by thread name, and who ran on
    the CPU while a request thread waited longer than SLOW_MS. The label says
    `(idle class)` for a SCHED_IDLE thread: one that holds the CPU against a woken
    normal thread should not, and was most likely inside the kernel (a kernel built
    without preemption keeps it there until it blocks or reschedules). A wait that ended on another
    CPU than the one the wakeup chose counts as `migrated` as well."""
    classes = classes or {}
    server: dict[int, str] = {}
    woken: dict[int, float] = {}
    ran_since: dict[int, tuple[float, int, str]] = {}  # cpu -> (since, tid, comm)
    history: dict[int, list[tuple[float, float, str]]] = collections.defaultdict(list)  # cpu -> (from, to, who)
    delays: dict[str, list[float]] = collections.defaultdict(list)
    blame: collections.Counter = collections.Counter()
    target: dict[int, int] = {}
    slow = migrated = 0
    for line in lines:
        m = _EVENT.match(line)
        if not m:
            continue
        comm, p, tid, cpu, t, name, rest = m.groups()
        if int(p) == pid:
            server[int(tid)] = comm.strip()
        cpu, t = int(cpu), float(t)
        if name in ("sched:sched_waking", "sched:sched_wakeup", "sched:sched_wakeup_new"):
            w = _WAKE.search(rest)
            if w and int(w.group(2)) not in woken:
                woken[int(w.group(2))] = t
                target[int(w.group(2))] = int(w.group(4))
        elif name == "sched:sched_switch":
            s = _SWITCH.search(rest)
            if not s:
                continue
            prev, nxt = int(s.group(2)), int(s.group(6))
            if s.group(4).startswith("R"):
                woken[prev] = t  # preempted: runnable again from now
                target[prev] = cpu
            if cpu in ran_since:
                since, who_tid, who = ran_since[cpu]
                label = ("idle" if who.startswith("swapper") else
                         f"server: {group(server[who_tid])}" if who_tid in server else group(who))
                if classes.get(who_tid) == "IDL":
                    label += " (idle class)"
                h = history[cpu]
                h.append((since, t, label))
                if len(h) > 256:
                    del h[:128]
            ran_since[cpu] = (t, nxt, s.group(5))
            if nxt in woken:
                at = woken.pop(nxt)
                if nxt in server:
                    g = group(server[nxt])
                    d = (t - at) * 1000
                    delays[g].append(d)
                    if d > SLOW_MS and g in REQUEST_THREADS:
                        slow += 1
                        if target.get(nxt, cpu) != cpu:
                            migrated += 1
                        for a, b, label in history[cpu]:
                            overlap = min(b, t) - max(a, at)
                            if overlap > 0:
                                blame[label] += overlap * 1000
    return {"delays": {g: summary(v) for g, v in delays.items()},
            "blame_ms": {k: round(v, 1) for k, v in blame.most_common()},
            "slow_waits": slow, "migrated": migrated}


def summary(v: list[float]) -> dict:
    v = sorted(v)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * len(v)))], 3)
    return {"n": len(v), "p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": round(v[-1], 3),
            "over_0_5": sum(x > 0.5 for x in v), "over_1": sum(x > 1 for x in v)}


def read(path: str, pid: int) -> dict:
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,cpu,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    return analyse(out.splitlines(), pid, read_classes(path))


def report(res: dict) -> list[str]:
    rows = ["### Scheduler trace of the loaded server (`perf sched`): wakeup to running, ms", "",
            "| thread | wakeups | p50 | p99 | p99.9 | max | > 0.5 ms | > 1 ms |", "|---|---|---|---|---|---|---|---|"]
    for g, s in sorted(res["delays"].items(), key=lambda kv: -kv[1]["n"]):
        rows.append(f"| {g} | {s['n']} | {s['p50']} | {s['p99']} | {s['p999']} | {s['max']} | "
                    f"{s['over_0_5']} | {s['over_1']} |")
    rows += ["", f"Who held the CPU while a request thread ({', '.join(REQUEST_THREADS)}) waited over "
                 f"{SLOW_MS} ms ({res['slow_waits']} waits, {res.get('migrated', 0)} of them ending on "
                 "another CPU than the wakeup chose), ms in all on the CPU it ran on:", "",
             "| ran instead | ms |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in list(res["blame_ms"].items())[:12]]
    return rows + [""]


if __name__ == "__main__":
    print("\n".join(report(read(sys.argv[1], int(sys.argv[2])))))
