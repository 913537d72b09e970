"""The share of CPU time the hypervisor stole (/proc/stat's steal, which the load
average does not show) since an earlier reading of /proc/stat's `cpu` line.

    before=$(grep '^cpu ' /proc/stat); ...; python3 bench/steal.py "$before" [--percent]

Prints the share as a fraction (0.0123), or as a percentage (1.2%) with --percent.
"""

import sys


def cpu_ticks(line):
    """user .. steal: the first eight counters of a `cpu` line."""
    return [int(v) for v in line.split()[1:9]]


def main():
    with open("/proc/stat") as f:
        now = next(line for line in f if line.startswith("cpu "))
    ticks = [b - a for a, b in zip(cpu_ticks(sys.argv[1]), cpu_ticks(now))]
    share = ticks[7] / max(1, sum(ticks))
    print(f"{share:.1%}" if "--percent" in sys.argv[2:] else f"{share:.4f}")


if __name__ == "__main__":
    main()
