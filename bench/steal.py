"""The share of CPU time the hypervisor stole (/proc/stat's steal, which the load
average does not show) since an earlier reading of /proc/stat's `cpu` line.

    before=$(grep '^cpu ' /proc/stat); ...; python3 bench/steal.py "$before" [--percent]

Prints the share as a fraction (0.0123), or as a percentage (1.2%) with --percent.

    load=$(cut -d' ' -f1 /proc/loadavg); before=$(grep '^cpu ' /proc/stat)
    command | python3 bench/steal.py row ROUND "$load" "$before"

prints the command's last JSON line with "round", "load" (before), "load_after" and
"steal" added: a benchmark script's row for valid_rounds.

`valid_rounds` (with `too_loaded` and `too_stolen`) is the rule every benchmark judges
its rounds by: bench/llm's summary, api.sh, chat.sh, bench/crawl/run.sh and render.sh
(`sys.path.insert(0, "bench"); from steal import valid_rounds`); `judged` applies it to
one timed step (bench/rag/run.sh's latency, build and http steps, pagination.sh's lists,
bench/chaos/soak.py's unloaded probe baseline), and `described` prints its figures.
"""

import json
import sys


def cpu_ticks(line):
    """user .. steal: the first eight counters of a `cpu` line."""
    return [int(v) for v in line.split()[1:9]]


def too_loaded(row, max_load):
    """Whether a run's 1-minute load average, before ("load") or after ("load_after")
    it, is above max_load."""
    return max(row["load"], row.get("load_after", row["load"])) > max_load


def too_stolen(row, max_steal):
    """Whether the share of CPU time stolen while a run ran ("steal") is above
    max_steal. Results from before steal was recorded count as unstolen."""
    return row.get("steal", 0.0) > max_steal


def valid_rounds(rows, max_load, max_steal):
    """The rows of the valid rounds: a round (each row's "round") is invalid when any
    of its runs is too loaded or lost too much CPU time. Prints the ranges seen and
    the rounds left out, by cause."""
    loads = [r["load"] for r in rows] + [r.get("load_after", r["load"]) for r in rows]
    steals = [r.get("steal", 0.0) for r in rows]
    loaded = sorted({r.get("round") for r in rows if too_loaded(r, max_load)}, key=str)
    stolen = sorted({r.get("round") for r in rows if too_stolen(r, max_steal)}, key=str)

    def names(rounds):
        return ", ".join(map(str, rounds)) or "none"

    print(f"1-min load average before/after each run: {min(loads):.2f}-{max(loads):.2f}; "
          f"rounds above {max_load} (invalid, left out): {names(loaded)}")
    print(f"CPU time stolen by the hypervisor per run: {min(steals):.1%}-{max(steals):.1%}; "
          f"rounds above {max_steal:.0%} (invalid, left out): {names(stolen)}")
    left_out = set(loaded) | set(stolen)
    return [r for r in rows if r.get("round") not in left_out]


def load1():
    """The 1-minute load average now."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_line():
    """/proc/stat's `cpu` line now, to pass to stolen_since or judged later."""
    with open("/proc/stat") as f:
        return next(line for line in f if line.startswith("cpu "))


def stolen_since(before):
    """The share of CPU time stolen since `before` (an earlier cpu_line)."""
    ticks = [b - a for a, b in zip(cpu_ticks(before), cpu_ticks(cpu_line()))]
    return ticks[7] / max(1, sum(ticks))


def judged(load, before, max_load, max_steal):
    """A run that began at 1-minute load `load` and cpu_line `before` and has just
    ended, judged by the rule: its "load", "load_after", "steal" and "valid"."""
    run = {"load": load, "load_after": load1(), "steal": stolen_since(before)}
    run["valid"] = not too_loaded(run, max_load) and not too_stolen(run, max_steal)
    return run


def described(run):
    """A judged run's load average before and after it and the CPU time stolen, as
    the scripts print it before their "valid" or "INVALID"."""
    return (f"load average {run['load']:.2f} before, {run['load_after']:.2f} after; "
            f"CPU time stolen {run['steal']:.1%}")


def main():
    if sys.argv[1:2] == ["row"]:
        round_, load, before = sys.argv[2:5]
        row = json.loads([line for line in sys.stdin if line.startswith("{")][-1])
        row.update(round=round_, load=float(load), load_after=load1(), steal=stolen_since(before))
        print(json.dumps(row))
        return
    share = stolen_since(sys.argv[1])
    print(f"{share:.1%}" if "--percent" in sys.argv[2:] else f"{share:.4f}")


if __name__ == "__main__":
    main()
