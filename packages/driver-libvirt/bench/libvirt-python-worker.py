# libvirt-python side of bench/driver.bench.mjs: the same semantic work as LibvirtDriver's
# spawn + getInfo + destroy, with the minimal libvirt calls, on ONE connection (32 threads on
# that connection for the concurrent case). Driven by JSON lines on stdin, answers JSON lines
# on stdout. Domain and volume XML come from the bench (captured from the driver) with
# "{UUID}" where the instance uuid goes.
#
# Each instance goes through spawn, getInfo, destroy; `conc` instances are in flight at a time.
# Per instance: pool.createXML (vol) / defineXML / createWithFlags(0) / info / destroy /
# undefineFlags(MANAGED_SAVE|SNAPSHOTS_METADATA) / vol.delete = 7 RPCs. (`dom.create()` would be
# 8: libvirt's remote driver follows REMOTE_PROC_DOMAIN_CREATE with a LOOKUP_BY_UUID for the id.)
#
# With "events": true at init the worker watches lifecycle events as Nova's libvirt driver does
# (nova/virt/libvirt/host.py: libvirt's default event loop in a thread of its own, then
# domainEventRegisterAny(None, VIR_DOMAIN_EVENT_ID_LIFECYCLE, ...) on the connection): the same
# duty LibvirtDriver has, so the same event traffic and its cost on both sides.
#
# Commands:
#   {"cmd":"init","socket":..,"domainXml":..,"volumeXml":..,"pool":..,"threads":32,"events":bool}
#   {"cmd":"run","uuids":[...],"conc":1|32}  -> {"total":s,"spawn":s,"getInfo":s,"destroy":s,"events":k}
#                                               (total wall time; mean latency of each operation;
#                                               lifecycle events received meanwhile, 0 unwatched)
#   {"cmd":"probe","uuids":[...]}            -> RPCs per phase from libvirt's client log
#                                               (needs LIBVIRT_LOG_FILTERS/OUTPUTS, see the bench)
#   {"cmd":"sweep","uuids":[...]}            -> removes any domain/volume of these uuids
#   {"cmd":"quit"}
import itertools
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from collections import Counter

import libvirt

libvirt.registerErrorHandler(lambda *a: None, None)

UNDEFINE_FLAGS = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
REMOTE_PROGRAM = 0x20008086
PROC_NAMES = {
    9: "domainCreate",
    11: "domainDefineXML",
    12: "domainDestroy",
    16: "domainGetInfo",
    24: "domainLookupByUUID",
    93: "storageVolCreateXML",
    94: "storageVolDelete",
    196: "domainCreateWithFlags",
    231: "domainUndefineFlags",
}

conn = None
pool = None
events_seen = [0]
DOMAIN_XML = ""
VOLUME_XML = ""


class Workers:
    """Persistent threads (started once, outside the timed part) that share one connection."""

    def __init__(self, k):
        self.queues = [queue.SimpleQueue() for _ in range(k)]
        self.done = queue.SimpleQueue()
        for q in self.queues:
            threading.Thread(target=self._loop, args=(q,), daemon=True).start()

    def _loop(self, q):
        while True:
            fn, nxt, n, stop = q.get()
            err = None
            try:
                while not stop:
                    i = next(nxt)  # itertools.count is atomic under the GIL
                    if i >= n:
                        break
                    fn(i)
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                err = e
                stop.append(True)
            self.done.put(err)

    def each(self, fn, n):
        nxt = itertools.count()
        stop = []
        for q in self.queues:
            q.put((fn, nxt, n, stop))
        errors = [e for e in (self.done.get() for _ in self.queues) if e is not None]
        if errors:
            raise errors[0]


workers = {}


def each(fn, n, conc):
    if conc <= 1:
        for i in range(n):
            fn(i)
        return
    if conc not in workers:
        workers[conc] = Workers(conc)
    workers[conc].each(fn, n)


def batch(uuids, conc, between=None):
    """Each instance: spawn, getInfo, destroy; one at a time or `conc` instances in flight."""
    n = len(uuids)
    vols = [None] * n
    doms = [None] * n
    latency = {"spawn": [], "getInfo": [], "destroy": []}
    clock = time.perf_counter

    def lifecycle(i):
        u = uuids[i]
        if between:
            between("spawn", "start")
        t = clock()
        vols[i] = pool.createXML(VOLUME_XML.replace("{UUID}", u), 0)
        d = conn.defineXML(DOMAIN_XML.replace("{UUID}", u))
        doms[i] = d
        d.createWithFlags(0)
        t1 = clock()
        if between:
            between("spawn", "end")
            between("getInfo", "start")
        state = d.info()[0]
        if state != libvirt.VIR_DOMAIN_RUNNING:
            raise RuntimeError("domain %s is in state %d, not running" % (u, state))
        t2 = clock()
        if between:
            between("getInfo", "end")
            between("destroy", "start")
        d.destroy()
        d.undefineFlags(UNDEFINE_FLAGS)
        doms[i] = None
        vols[i].delete(0)
        vols[i] = None
        t3 = clock()
        if between:
            between("destroy", "end")
        latency["spawn"].append(t1 - t)
        latency["getInfo"].append(t2 - t1)
        latency["destroy"].append(t3 - t2)

    try:
        seen = events_seen[0]
        t0 = clock()
        each(lifecycle, n, conc)
        total = clock() - t0
        return {
            "total": total,
            **{op: sum(xs) / len(xs) for op, xs in latency.items()},
            "events": events_seen[0] - seen,
        }
    finally:
        # Leave nothing behind, whatever failed.
        for d in doms:
            if d is not None:
                try:
                    if d.isActive():
                        d.destroy()
                except libvirt.libvirtError:
                    pass
                try:
                    d.undefineFlags(UNDEFINE_FLAGS)
                except libvirt.libvirtError:
                    pass
        for v in vols:
            if v is not None:
                try:
                    v.delete(0)
                except libvirt.libvirtError:
                    pass


def tx_procs(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return [
        int(m.group(2))
        for m in re.finditer(r"RPC_CLIENT_MSG_TX_QUEUE: .*? prog=(\d+) .*?proc=(\d+)", text)
        if int(m.group(1)) == REMOTE_PROGRAM
    ]


def probe(uuids):
    path = os.environ.get("BENCH_PY_RPC_LOG", "")
    result = {}
    marks = {}

    def between(phase, edge):
        procs = tx_procs(path)
        if edge == "start":
            marks[phase] = len(procs)
        else:
            c = result.setdefault(phase, Counter())
            c.update(PROC_NAMES.get(p, "proc%d" % p) for p in procs[marks[phase]:])

    batch(uuids, 1, between)
    return {"instances": len(uuids), "phases": {k: dict(v) for k, v in result.items()}}


def sweep(uuids):
    wanted = set(uuids)
    doms = vols = 0
    for d in conn.listAllDomains(0):
        if d.UUIDString() in wanted:
            doms += 1
            try:
                if d.isActive():
                    d.destroy()
            except libvirt.libvirtError:
                pass
            try:
                d.undefineFlags(UNDEFINE_FLAGS)
            except libvirt.libvirtError:
                pass
    pool.refresh(0)
    for v in pool.listAllVolumes(0):
        if v.name()[:36] in wanted:
            vols += 1
            try:
                v.delete(0)
            except libvirt.libvirtError:
                pass
    return {"domains": doms, "volumes": vols}


def watch_events():
    """Nova's way: libvirt's default event loop run by a thread of its own (before the open)."""
    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, daemon=True).start()


def on_lifecycle(_conn, _dom, _event, _detail, _opaque):
    events_seen[0] += 1


def main():
    global conn, pool, DOMAIN_XML, VOLUME_XML
    # Ctrl-C reaches the whole process group: the bench finishes the batch, sweeps, then quits us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        cmd = msg["cmd"]
        try:
            if cmd == "init":
                if msg.get("events"):
                    watch_events()
                conn = libvirt.open("test+unix:///default?socket=" + msg["socket"])
                if msg.get("events"):
                    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_lifecycle, None)
                pool = conn.storagePoolLookupByName(msg["pool"])
                DOMAIN_XML = msg["domainXml"]
                VOLUME_XML = msg["volumeXml"]
                workers[msg.get("threads", 32)] = Workers(msg.get("threads", 32))
                reply = {"ok": True, "libvirt": libvirt.getVersion()}
            elif cmd == "run":
                reply = {"ok": True, **batch(msg["uuids"], msg["conc"])}
            elif cmd == "probe":
                reply = {"ok": True, **probe(msg["uuids"])}
            elif cmd == "sweep":
                reply = {"ok": True, **sweep(msg["uuids"])}
            elif cmd == "quit":
                out.write(json.dumps({"ok": True}) + "\n")
                out.flush()
                break
            else:
                reply = {"ok": False, "error": "unknown command " + cmd}
        except Exception as e:  # noqa: BLE001 - reported to the bench
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    if conn is not None:
        conn.close()


if __name__ == "__main__":
    main()
