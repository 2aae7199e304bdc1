#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The measuring part of bench/idle.sh: what processes cost while nothing
happens.

usage: idle_sample.py --duration SECS [--title TEXT] [--threads] NAME=PID...

Reads /proc at the start and the end of a window of SECS seconds and prints
per process: CPU (utime + stime of /proc/PID/stat over the window, in % of
one core), wake-ups per second (voluntary + nonvoluntary context switches of
every thread, from /proc/PID/task/TID/status: a thread that sleeps and wakes
up once is switched out once), VmRSS and VmHWM at the end; then per thread
name (threads of one name summed, with their count) the same CPU and wake-up
figures, busiest first. Also the whole machine's CPU use over the window
(/proc/stat) and the load average, since other work moves the figures.
With --threads, also every thread that wakes at least once a second, with
the system call it waits in at the end (futex: a condition variable or a
lock, epoll_wait/poll: an event loop, nanosleep: a sleep). Threads that start
or end inside the window count from zero or up to their last reading.
"""
import argparse
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")

# x86-64 numbers of the calls a waiting thread sits in (/proc/.../syscall).
SYSCALLS = {0: "read", 7: "poll", 23: "select", 35: "nanosleep",
            43: "accept", 45: "recvfrom", 47: "recvmsg", 202: "futex",
            230: "clock_nanosleep", 232: "epoll_wait", 271: "ppoll",
            281: "epoll_pwait", 288: "accept4", 441: "epoll_pwait2"}


def waiting_in(pid, tid):
    """The system call a thread waits in, or "running"/"?"."""
    text = read(f"/proc/{pid}/task/{tid}/syscall")
    if not text:
        return "?"
    first = text.split()[0]
    if first == "running":
        return first
    try:
        return SYSCALLS.get(int(first), f"syscall {first}")
    except ValueError:
        return "?"


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def thread_sample(pid, tid):
    """(name, cpu seconds, context switches) of one thread, or None. The
    CPU time is the scheduler's (schedstat, ns) where the kernel has it: a
    thread's utime + stime counts in ticks of 10 ms, too coarse here."""
    stat = read(f"/proc/{pid}/task/{tid}/stat")
    status = read(f"/proc/{pid}/task/{tid}/status")
    sched = read(f"/proc/{pid}/task/{tid}/schedstat")
    if stat is None or status is None:
        return None
    # The name is in parentheses and may hold spaces: split after the last ')'.
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    if sched is not None:
        cpu = int(sched.split()[0]) / 1e9
    else:
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    switches = 0
    for line in status.splitlines():
        if line.startswith(("voluntary_ctxt_switches:",
                            "nonvoluntary_ctxt_switches:")):
            switches += int(line.split()[1])
    return name, cpu, switches


def process_sample(pid):
    threads = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        s = thread_sample(pid, tid)
        if s is not None:
            threads[tid] = s
    stat = read(f"/proc/{pid}/stat")
    status = read(f"/proc/{pid}/status") or ""
    if stat is None:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    mem = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            mem[key] = int(value.split()[0])  # kB
    return {"ticks": int(fields[11]) + int(fields[12]), "threads": threads,
            "mem": mem}


def machine_ticks():
    """(busy, total) ticks of all CPUs from /proc/stat."""
    parts = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle, iowait
    total = sum(parts[:8])  # guest time is already in user
    return total - idle, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("--threads", action="store_true",
                    help="also list every thread that wakes at least 1/s")
    ap.add_argument("procs", nargs="+", metavar="NAME=PID")
    args = ap.parse_args()
    procs = [p.split("=", 1) for p in args.procs]

    load_before = read("/proc/loadavg").split()[:3]
    m0 = machine_ticks()
    t0 = time.monotonic()
    first = {name: process_sample(pid) for name, pid in procs}
    time.sleep(args.duration)
    last = {name: process_sample(pid) for name, pid in procs}
    t1 = time.monotonic()
    m1 = machine_ticks()
    load_after = read("/proc/loadavg").split()[:3]
    span = t1 - t0

    print(f"== {args.title}: {span:.1f} s window")
    print(f"machine: {100.0 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]):.1f} % "
          f"of all {os.cpu_count()} CPUs busy; load average "
          f"{' '.join(load_before)} before, {' '.join(load_after)} after")
    # CPU: the scheduler's nanoseconds summed over the threads (a thread
    # that ended during the window is missed); "ticks": utime + stime of
    # the process, in 10 ms ticks (0.017 % steps over 60 s).
    print(f"{'node':<6} {'CPU % of a core':>16} {'(ticks)':>8} "
          f"{'wake-ups/s':>11} {'VmRSS MB':>9} {'VmHWM MB':>9} "
          f"{'threads':>8}")
    for name, pid in procs:
        a, b = first[name], last[name]
        if a is None or b is None:
            print(f"{name:<6} process {pid} went away during the window")
            continue
        ticks = 100.0 * (b["ticks"] - a["ticks"]) / TICK / span
        switches = 0
        busy = 0.0
        for tid, (_, sec, sw) in b["threads"].items():
            before = a["threads"].get(tid)
            switches += sw - (before[2] if before else 0)
            busy += sec - (before[1] if before else 0)
        cpu = 100.0 * busy / span
        print(f"{name:<6} {cpu:>16.3f} {ticks:>8.3f} {switches / span:>11.1f} "
              f"{b['mem'].get('VmRSS', 0) / 1024:>9.1f} "
              f"{b['mem'].get('VmHWM', 0) / 1024:>9.1f} "
              f"{len(b['threads']):>8}")
    for name, pid in procs:
        a, b = first[name], last[name]
        if a is None or b is None:
            continue
        rows = {}
        tids = set(a["threads"]) | set(b["threads"])
        for tid in tids:
            end = b["threads"].get(tid) or a["threads"][tid]
            start = a["threads"].get(tid, (end[0], 0, 0))
            row = rows.setdefault(end[0], [0, 0, 0])
            row[0] += 1
            row[1] += end[1] - start[1]
            row[2] += end[2] - start[2]
        print(f"-- {name} per thread name (count: CPU % of a core, wake-ups/s)")
        for tname, (n, cpu, sw) in sorted(
                rows.items(), key=lambda kv: (-kv[1][2], -kv[1][1], kv[0])):
            if sw == 0 and cpu == 0:
                continue
            print(f"   {tname:<16} x{n:<3} {100.0 * cpu / span:>7.3f} %"
                  f" {sw / span:>9.1f}/s")
        quiet = sorted(t for t, (_, cpu, sw) in rows.items()
                       if sw == 0 and cpu == 0)
        if quiet:
            print(f"   silent: {', '.join(quiet)}")
        if args.threads:
            print(f"-- {name} threads waking at least once a second "
                  "(tid, name, wake-ups/s, CPU %, waits in)")
            busy = []
            for tid, end in b["threads"].items():
                start = a["threads"].get(tid, (end[0], 0, 0))
                rate = (end[2] - start[2]) / span
                if rate >= 1:
                    busy.append((rate, tid, end[0],
                                 100.0 * (end[1] - start[1]) / span))
            for rate, tid, tname, cpu in sorted(busy, reverse=True):
                print(f"   {tid:>8} {tname:<16} {rate:>9.1f}/s {cpu:>7.3f} %"
                      f"  {waiting_in(pid, tid)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
