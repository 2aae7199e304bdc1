#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Client side and arithmetic of bench/failover.sh.

  probe.py run --target IP:PORT --out FILE [--interval-ms 10] [--timeout-ms 100]
      Starts a TCP probe every interval (probes overlap; none waits for the
      previous one): connect, read one line (the node name), close. Appends
      "START END RESULT" per probe to FILE, times in epoch seconds; RESULT is
      the name read or ERR:<reason>. Runs until SIGTERM.
  probe.py stamp
      Copies stdin to stdout, each line prefixed with the epoch time it was
      read (for xtables-monitor).
  probe.py gap --log FILE --fault TS [--new NAME]
      From the fault to the first answer by NAME (any name when NAME is "*"):
      prints "GAP_MS OUTAGE_MS OTHERS": the gap, the longest stretch without
      any successful answer (from the last answer before the fault to the
      first answer by NAME), and how many answers came from other names after
      the first answer by NAME (0 unless the VIP flaps). "NA NA NA" when NAME
      never answered.
  probe.py owners --ip VIP --from TS --to TS NODE=MONLOG...
      Replays `ip -ts -o monitor address` logs of the nodes and prints the
      longest time (ms) in [from, to] during which two or more nodes held
      VIP/32, and the number of such stretches.
  probe.py rules --log FILE --from TS --want N --chain CHAIN [--match TEXT]
      Reads "stamp"-ed xtables-monitor output; prints the ms from TS until
      the rules of CHAIN whose text contains TEXT reached N (added minus
      deleted, counted over the whole log), or NA.
  probe.py report FILE
      Prints the table of bench/failover.sh from its results file.
  probe.py compare FILE
      Prints networkd's and each peer's ("P KEY|LABEL" lines; their results
      are "R KEY.METRIC VALUE") rows side by side: median [min-max] and the
      ratio of the peer's median to networkd's.
"""
import argparse
import asyncio
import datetime
import re
import signal
import statistics
import sys
import time


# --- run ---------------------------------------------------------------------

async def probe_once(ip, port, timeout, out):
    t0 = time.time()
    result = "ERR:unknown"
    writer = None
    try:
        async def talk():
            nonlocal writer
            reader, writer = await asyncio.open_connection(ip, port)
            line = await reader.readline()
            return line.decode(errors="replace").strip()
        name = await asyncio.wait_for(talk(), timeout)
        result = name if name else "ERR:empty"
    except asyncio.TimeoutError:
        result = "ERR:timeout"
    except ConnectionRefusedError:
        result = "ERR:refused"
    except ConnectionResetError:
        result = "ERR:reset"
    except OSError as e:
        result = "ERR:" + (e.strerror or "oserror").replace(" ", "_")
    finally:
        if writer is not None:
            writer.close()
    out.write(f"{t0:.6f} {time.time():.6f} {result}\n")


async def run(args):
    ip, port = args.target.rsplit(":", 1)
    port = int(port)
    interval = args.interval_ms / 1000.0
    timeout = args.timeout_ms / 1000.0
    out = open(args.out, "a", buffering=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = set()
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        t = asyncio.create_task(probe_once(ip, port, timeout, out))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        n += 1
        nxt = start + n * interval
        now = time.monotonic()
        if nxt < now:  # fell behind: skip ticks, do not burst
            n = int((now - start) / interval) + 1
            nxt = start + n * interval
        try:
            await asyncio.wait_for(stop.wait(), nxt - time.monotonic())
        except asyncio.TimeoutError:
            pass
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.close()


# --- stamp -------------------------------------------------------------------

def stamp():
    for line in sys.stdin:
        sys.stdout.write(f"{time.time():.6f} {line}")
        sys.stdout.flush()


# --- gap ---------------------------------------------------------------------

def read_probes(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            rows.append((float(parts[0]), float(parts[1]), parts[2]))
    rows.sort(key=lambda r: r[1])
    return rows


def gap(args):
    rows = read_probes(args.log)
    ok = [r for r in rows if not r[2].startswith("ERR:")]
    before = [r[1] for r in ok if r[1] <= args.fault]
    first_new = None
    for r in ok:
        # Probes started before the fault do not count for the new node.
        if r[0] >= args.fault and (args.new == "*" or r[2] == args.new):
            first_new = r
            break
    if first_new is None:
        print("NA NA NA")
        return
    last = before[-1] if before else args.fault
    longest = 0.0
    for r in ok:
        if r[1] <= last:
            continue
        if r[1] > first_new[1]:
            break
        longest = max(longest, r[1] - last)
        last = r[1]
    others = sum(1 for r in ok if r[1] > first_new[1] and args.new != "*"
                 and r[2] != args.new)
    print(f"{(first_new[1] - args.fault) * 1000:.1f} {longest * 1000:.1f} "
          f"{others}")


# --- owners ------------------------------------------------------------------

MON_RE = re.compile(r"^\[([0-9T:.\-]+)\]\s+(Deleted\s+)?\d+:\s+\S+\s+inet\s+"
                    r"([0-9.]+)/(\d+)")


def owners(args):
    events = []
    for spec in args.logs:
        node, path = spec.split("=", 1)
        with open(path) as f:
            for line in f:
                m = MON_RE.match(line)
                if not m or m.group(3) != args.ip or m.group(4) != "32":
                    continue
                ts = datetime.datetime.fromisoformat(m.group(1)).timestamp()
                events.append((ts, node, m.group(2) is None))
    events.sort()
    held = set()
    longest = 0.0
    stretches = 0
    since = None
    for ts, node, present in events + [(args.to, None, None)]:
        if since is not None:
            a, b = max(since, args.frm), min(ts, args.to)
            if b > a:
                longest = max(longest, b - a)
        if node is None:
            break
        before = len(held) >= 2
        (held.add if present else held.discard)(node)
        after = len(held) >= 2
        if after and not before:
            since = ts
            if args.frm <= ts <= args.to:
                stretches += 1
        elif before and not after:
            since = None
    print(f"{longest * 1000:.1f} {stretches}")


# --- rules -------------------------------------------------------------------

def rules(args):
    """Counts rules of one chain (added minus deleted) whose text contains
    MATCH; prints the ms from TS until the count reached WANT."""
    op_re = re.compile(r" -([AID]) " + re.escape(args.chain) + " ")
    count = 0
    with open(args.log) as f:
        for line in f:
            parts = line.split(" ", 1)
            if len(parts) != 2:
                continue
            m = op_re.search(parts[1])
            if not m or (args.match and args.match not in parts[1]):
                continue
            count += -1 if m.group(1) == "D" else 1
            ts = float(parts[0])
            if ts >= args.frm and count >= args.want:
                print(f"{(ts - args.frm) * 1000:.1f}")
                return
    print("NA")


# --- report ------------------------------------------------------------------

def report(args):
    defs, values = [], {}
    with open(args.file) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("D "):
                defs.append(line[2:].split("|"))
            elif line.startswith("R "):
                _, key, val = line.split(" ", 2)
                values.setdefault(key, []).append(val)
    hdr = ("scenario", "runs", "fail", "min", "median", "max", "target",
           "median ok")
    rows = []
    for key, label, target_text, target_ms in defs:
        vals = values.get(key, [])
        nums, bound = numbers(vals)
        fails = len(vals) - len(nums)
        if nums:
            med = statistics.median(nums)
            ge = ">=" if bound else ""
            cells = (f"{nums[0]:.0f}", f"{ge}{med:.0f}", f"{nums[-1]:.0f}")
            ok = "-" if target_ms == "-" else (
                "yes" if med <= float(target_ms) else "NO")
            if fails and ok == "yes":
                ok = "yes*"
        else:
            cells, ok = ("-", "-", "-"), "-"
        rows.append((label, str(len(vals)), str(fails)) + cells
                    + (target_text, ok))
    widths = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    def fmt(r):
        return "  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(fmt(hdr))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


# --- compare -----------------------------------------------------------------

def read_results(path):
    defs, values, peers = [], {}, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("D "):
                defs.append(line[2:].split("|"))
            elif line.startswith("R "):
                _, key, val = line.split(" ", 2)
                values.setdefault(key, []).append(val)
            elif line.startswith("P "):
                peers.append(tuple(line[2:].split("|", 1)))
    return defs, values, peers


def numbers(vals):
    """The numbers among one metric's values ("NA" left out; a trailing "+"
    marks a lower bound) and whether any was a lower bound."""
    nums = sorted(float(v.rstrip("+")) for v in vals if v not in ("NA", ""))
    return nums, any(v.endswith("+") for v in vals)


def summary(vals):
    """(median or None, cell text) of one metric's runs."""
    nums, bound = numbers(vals)
    missing = len(vals) - len(nums)
    if not vals:
        return None, "-"
    if not nums:
        return None, f"{missing} NA"
    med = statistics.median(nums)
    text = (">=" if bound else "") + f"{med:.0f} [{nums[0]:.0f}-{nums[-1]:.0f}]"
    if missing:
        text += f" +{missing} NA"
    return med, text


def ratio(peer_med, base_med):
    if peer_med is None or base_med is None or base_med <= 0:
        return "-"
    return f"{peer_med / base_med:.2g}x" if peer_med < base_med \
        else f"{peer_med / base_med:.1f}x"


def compare(args):
    defs, values, peers = read_results(args.file)
    hdr = ["scenario", "networkd"]
    for _, label in peers:
        hdr += [label, "x"]
    rows = []
    for key, label, _, _ in defs:
        if not any(values.get(f"{p}.{key}") for p, _ in peers):
            continue
        base, cell = summary(values.get(key, []))
        row = [label, cell]
        for p, _ in peers:
            med, cell = summary(values.get(f"{p}.{key}", []))
            row += [cell, ratio(med, base)]
        rows.append(row)
    if not rows:
        print("(no peer results)")
        return
    widths = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    def fmt(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(fmt(hdr))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval-ms", type=float, default=10)
    p.add_argument("--timeout-ms", type=float, default=100)
    sub.add_parser("stamp")
    p = sub.add_parser("gap")
    p.add_argument("--log", required=True)
    p.add_argument("--fault", type=float, required=True)
    p.add_argument("--new", default="*")
    p = sub.add_parser("owners")
    p.add_argument("--ip", required=True)
    p.add_argument("--from", dest="frm", type=float, required=True)
    p.add_argument("--to", type=float, required=True)
    p.add_argument("logs", nargs="+")
    p = sub.add_parser("rules")
    p.add_argument("--log", required=True)
    p.add_argument("--from", dest="frm", type=float, required=True)
    p.add_argument("--want", type=int, required=True)
    p.add_argument("--chain", required=True)
    p.add_argument("--match", default="")
    p = sub.add_parser("report")
    p.add_argument("file")
    p = sub.add_parser("compare")
    p.add_argument("file")
    args = ap.parse_args()
    if args.cmd == "run":
        asyncio.run(run(args))
    elif args.cmd == "stamp":
        stamp()
    elif args.cmd == "gap":
        gap(args)
    elif args.cmd == "owners":
        owners(args)
    elif args.cmd == "rules":
        rules(args)
    elif args.cmd == "compare":
        compare(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
