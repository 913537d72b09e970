"""The share of CPU time the hypervisor stole (/proc/stat's steal, which the load
average does not show) since an earlier reading of /proc/stat's `cpu` line.

    before=$(grep '^cpu ' /proc/stat); ...; python3 bench/steal.py "$before" [--percent]

Prints the share as a fraction (0.0123), or as a percentage (1.2%) with --percent.

`valid_rounds` is the rule the API and chat benchmarks judge their rounds by
(`sys.path.insert(0, "bench"); from steal import valid_rounds`).
"""

import sys


def cpu_ticks(line):
    """user .. steal: the first eight counters of a `cpu` line."""
    return [int(v) for v in line.split()[1:9]]


def valid_rounds(rows, max_load, max_steal):
    """The rows of the valid rounds. Each row carries its "round", the 1-minute load
    average before and after it ("load", "load_after") and the share of CPU time
    stolen meanwhile ("steal"); a round with a load above max_load or a steal above
    max_steal is invalid. Prints the ranges seen and the rounds left out."""
    invalid = sorted({str(r["round"]) for r in rows
                      if max(r["load"], r["load_after"]) > max_load or r["steal"] > max_steal})
    print(f"load average before/after each run: {min(r['load'] for r in rows):.2f}-"
          f"{max(r['load_after'] for r in rows):.2f}; "
          f"steal: {min(r['steal'] for r in rows):.1%}-{max(r['steal'] for r in rows):.1%}; "
          f"rounds above {max_load} or {max_steal:.0%} (invalid, left out): {', '.join(invalid) or 'none'}\n")
    return [r for r in rows if str(r["round"]) not in invalid]


def main():
    with open("/proc/stat") as f:
        now = next(line for line in f if line.startswith("cpu "))
    ticks = [b - a for a, b in zip(cpu_ticks(sys.argv[1]), cpu_ticks(now))]
    share = ticks[7] / max(1, sum(ticks))
    print(f"{share:.1%}" if "--percent" in sys.argv[2:] else f"{share:.4f}")


if __name__ == "__main__":
    main()
