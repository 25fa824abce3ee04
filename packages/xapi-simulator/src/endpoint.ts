// One host's HTTP endpoint: JSON-RPC at POST /jsonrpc, XML-RPC at POST /, XAPI's raw disk
// handlers GET /export_raw_vdi and PUT /import_raw_vdi, and a VM's RRD at GET /vm_rrd.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { XapiError } from "./errors.js";
import type { EndpointRole, Outcome } from "./dispatcher.js";
import { dispatch, sleep } from "./dispatcher.js";
import { BLOCK_SIZE, vhdToDisk } from "./disk.js";
import { classByName, fieldTypes } from "./schema.js";
import { parseType } from "./wire/xapi-type.js";
import { escapeXml, parseMethodCall, xmlAny, xmlFailure, xmlSuccess, xmlValue } from "./wire/xmlrpc.js";
import type { EventBatch } from "./handlers/session-task-event.js";
import type { World } from "./world.js";

const MAX_RPC_BODY = 64 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_RPC_BODY) {
        reject(new Error("request too large"));
        req.destroy();
      } else chunks.push(c);
    });
    // One chunk (the usual RPC call) is decoded as it is, not copied first.
    req.on("end", () => resolve((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8")));
    req.on("error", reject);
  });
}

function encodeXml(outcome: Outcome): string {
  if (!outcome.ok) return xmlFailure(outcome.error.description);
  if (outcome.type === "event batch") return xmlSuccess(eventBatchXml(outcome.value as EventBatch));
  return xmlSuccess(xmlValue(outcome.value, parseType(outcome.type), fieldTypes));
}

function eventBatchXml(batch: EventBatch): string {
  const events = batch.events.map((ev) => {
    let s = `<value><struct><member><name>id</name><value>${ev.id}</value></member>`;
    s += `<member><name>timestamp</name><value><dateTime.iso8601>${escapeXml(ev.timestamp)}</dateTime.iso8601></value></member>`;
    s += `<member><name>class</name><value>${ev.class}</value></member>`;
    s += `<member><name>operation</name><value>${ev.operation}</value></member>`;
    s += `<member><name>ref</name><value>${escapeXml(ev.ref)}</value></member>`;
    if (ev.snapshot) {
      const real = classByName(ev.class) ?? ev.class;
      s += `<member><name>snapshot</name>${xmlValue(ev.snapshot, parseType(`${real} record`), fieldTypes)}</member>`;
    }
    return `${s}</struct></value>`;
  });
  return `<value><struct><member><name>events</name><value><array><data>${events.join("")}</data></array></value></member><member><name>valid_ref_counts</name>${xmlAny(batch.valid_ref_counts)}</member><member><name>token</name><value>${escapeXml(batch.token)}</value></member></struct></value>`;
}

/** A JSON-RPC 2.0 error object for a request that is not a call (`id` null when it cannot be read). */
function jsonRpcRefusal(res: ServerResponse, code: number, message: string, id: unknown = null): void {
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: id ?? null });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}

/** A listening endpoint. */
export class Endpoint {
  private readonly server: Server;
  url = "";

  constructor(
    private readonly world: World,
    private readonly role: EndpointRole,
  ) {
    this.server = createServer({ keepAlive: true }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // A fault of the simulator itself: said so in the body (no argument, no session echoed).
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "text/plain" }).end(`internal error: ${e instanceof Error ? e.name : "unknown"}\n`);
        } else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 30_000;
  }

  /** Listen; resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const port = (this.server.address() as AddressInfo).port;
        this.url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
        resolve(port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    // The RPC paths are the hot ones: no URL parsing for them.
    if (req.method === "POST" && path === "/jsonrpc") return this.jsonRpc(req, res);
    if (req.method === "POST" && (path === "/" || path === "/RPC2")) return this.xmlRpc(req, res);
    const url = new URL(raw, "http://sim");
    if (req.method === "GET" && path === "/export_raw_vdi") return this.exportVdi(url, res);
    if (req.method === "PUT" && path === "/import_raw_vdi") return this.importVdi(url, req, res);
    if (req.method === "GET" && path === "/vm_rrd") return this.vmRrd(url, res);
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }

  private async rpc(method: string, params: readonly unknown[], res: ServerResponse): Promise<Outcome | undefined> {
    const faults = this.world.faults;
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    const outcome = await dispatch(this.world, this.role, method, params);
    if (faults.takeDrop(method)) {
      // The call ran; the caller never hears about it.
      res.socket?.destroy();
      return undefined;
    }
    return outcome;
  }

  private async jsonRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readBody(req));
    } catch {
      return jsonRpcRefusal(res, -32700, "Parse error");
    }
    // Valid JSON that is no call (null, a number, an array: XAPI takes no batches, no method name):
    // JSON-RPC's Invalid Request, as an error object, never an empty 500.
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return jsonRpcRefusal(res, -32600, "Invalid Request");
    const call = parsed as { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
    if (typeof call.method !== "string" || call.method === "") return jsonRpcRefusal(res, -32600, "Invalid Request", call.id);
    const v2 = call.jsonrpc === "2.0";
    const id = call.id ?? null;
    const method = call.method;
    const params = Array.isArray(call.params) ? call.params : [];
    const outcome = await this.rpc(method, params, res);
    if (!outcome) return;
    let body: string;
    if (outcome.ok) body = v2 ? JSON.stringify({ jsonrpc: "2.0", result: outcome.value, id }) : JSON.stringify({ result: outcome.value, error: null, id });
    else if (v2) body = JSON.stringify({ jsonrpc: "2.0", error: { code: 1, message: outcome.error.code, data: outcome.error.params }, id });
    else body = JSON.stringify({ result: null, error: outcome.error.description, id });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  }

  private async xmlRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    let method: string;
    let params: unknown[];
    try {
      ({ method, params } = parseMethodCall(text));
    } catch (e) {
      const err = e instanceof XapiError ? e : new XapiError("XMLRPC_UNMARSHAL_FAILURE", ["request", "malformed"]);
      const body = xmlFailure(err.description);
      res.writeHead(200, { "content-type": "text/xml", "content-length": Buffer.byteLength(body) }).end(body);
      return;
    }
    const outcome = await this.rpc(method, params, res);
    if (!outcome) return;
    const body = encodeXml(outcome);
    res.writeHead(200, { "content-type": "text/xml", "content-length": Buffer.byteLength(body) }).end(body);
  }

  /** Resolve session_id and vdi (ref or uuid) of a disk handler; answers the HTTP error itself. */
  private diskTarget(url: URL, res: ServerResponse): string | undefined {
    const pool = this.role.pool;
    if (this.role.masterAddress !== undefined) {
      res.writeHead(503, { "content-type": "text/plain" }).end("HOST_IS_SLAVE\n");
      return undefined;
    }
    try {
      pool.checkSession(url.searchParams.get("session_id") ?? "");
    } catch {
      res.writeHead(401, { "content-type": "text/plain" }).end("Unauthorized\n");
      return undefined;
    }
    const v = url.searchParams.get("vdi") ?? "";
    const ref = pool.db.has("VDI", v) ? v : pool.db.findByUuid("VDI", v);
    if (!ref) {
      res.writeHead(404, { "content-type": "text/plain" }).end("VDI not found\n");
      return undefined;
    }
    return ref;
  }

  /**
   * GET /vm_rrd?session_id=&uuid=: the VM's round-robin database in rrdtool's XML, as XAPI serves
   * it. Only the CPU data sources are simulated; their `last_ds` is the raw cumulative counter.
   */
  private vmRrd(url: URL, res: ServerResponse): void {
    const pool = this.role.pool;
    if (this.role.masterAddress !== undefined) {
      res.writeHead(503, { "content-type": "text/plain" }).end("HOST_IS_SLAVE\n");
      return;
    }
    try {
      pool.checkSession(url.searchParams.get("session_id") ?? "");
    } catch {
      res.writeHead(401, { "content-type": "text/plain" }).end("Unauthorized\n");
      return;
    }
    if (this.world.faults.rrdRefused) {
      res.writeHead(403, { "content-type": "text/plain" }).end("RBAC: permission denied\n");
      return;
    }
    const ref = pool.db.findByUuid("VM", url.searchParams.get("uuid") ?? "");
    const cpu = ref ? pool.cpu.sample(ref) : undefined;
    if (!cpu) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no RRD for that VM\n");
      return;
    }
    const f = (x: number): string => x.toFixed(6);
    const ds = (name: string, last: number): string =>
      `<ds><name>${name}</name><type>DERIVE</type><minimal_heartbeat>300.0000</minimal_heartbeat><min>0.0</min><max>1.0000</max>` +
      `<last_ds>${f(last)}</last_ds><value>${f(cpu.rate)}</value><unknown_sec>0</unknown_sec></ds>`;
    const names = cpu.perVcpu.map((_, i) => `cpu${i}`);
    const total = cpu.perVcpu.reduce((a, b) => a + b, 0) / cpu.perVcpu.length;
    const dss = [...cpu.perVcpu.map((s, i) => ds(names[i] as string, s)), ds("cpu_usage", total)];
    const rates = [...names, "cpu_usage"].map(() => `<v>${f(cpu.rate)}</v>`).join("");
    const prep = [...names, "cpu_usage"].map(() => "<ds><primary_value>0.0</primary_value><secondary_value>0.0</secondary_value><value>0.0</value><unknown_datapoints>0</unknown_datapoints></ds>").join("");
    const body =
      `<?xml version="1.0"?><rrd><version>0003</version><step>5</step><lastupdate>${Math.floor(Date.now() / 1000)}</lastupdate>${dss.join("")}` +
      `<rra><cf>AVERAGE</cf><pdp_per_row>1</pdp_per_row><params><xff>0.5000</xff></params><cdp_prep>${prep}</cdp_prep><database><row>${rates}</row></database></rra></rrd>`;
    res.writeHead(200, { "content-type": "text/xml", "content-length": Buffer.byteLength(body) }).end(body);
  }

  private async exportVdi(url: URL, res: ServerResponse): Promise<void> {
    const ref = this.diskTarget(url, res);
    if (!ref) return;
    const format = url.searchParams.get("format") ?? "raw";
    if (format !== "raw" && format !== "vhd") {
      res.writeHead(400, { "content-type": "text/plain" }).end(`unsupported format ${format}\n`);
      return;
    }
    const disk = this.role.pool.disk(ref);
    const entries = Math.ceil(disk.size / BLOCK_SIZE);
    const length =
      format === "raw" ? disk.size : 512 + 1024 + Math.ceil((entries * 4) / 512) * 512 + disk.allocatedBlocks().length * (512 + BLOCK_SIZE) + 512;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": length });
    const chunks = format === "raw" ? disk.rawChunks() : disk.vhdChunks();
    for (const chunk of chunks) {
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve));
      if (res.destroyed) return;
    }
    res.end();
    this.world.log(`${this.role.pool.layout.name} GET /export_raw_vdi format=${format} -> ${length} bytes`);
  }

  private async importVdi(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ref = this.diskTarget(url, res);
    if (!ref) {
      req.resume();
      return;
    }
    const format = url.searchParams.get("format") ?? "raw";
    if (format !== "raw" && format !== "vhd") {
      req.resume();
      res.writeHead(400, { "content-type": "text/plain" }).end(`unsupported format ${format}\n`);
      return;
    }
    const disk = this.role.pool.disk(ref);
    if (format === "vhd") {
      // A VHD is read whole (its BAT sits before the blocks it points to), within a bound.
      const limit = disk.size + 8 * 1024 * 1024;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          res.writeHead(400, { "content-type": "text/plain" }).end("VHD larger than the VDI\n");
          req.destroy();
          return;
        }
        chunks.push(chunk);
      }
      try {
        const image = vhdToDisk(Buffer.concat(chunks));
        if (image.size > disk.size) throw new Error("VHD virtual size exceeds the VDI's");
        for (const i of image.allocatedBlocks()) disk.write(i * BLOCK_SIZE, image.block(i));
      } catch (e) {
        res.writeHead(400, { "content-type": "text/plain" }).end(`${(e as Error).message}\n`);
        return;
      }
      this.world.log(`${this.role.pool.layout.name} PUT /import_raw_vdi format=vhd -> ${size} bytes`);
      res.writeHead(200, { "content-type": "text/plain" }).end();
      return;
    }
    let offset = 0;
    let pending: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        // Write whole blocks as they arrive so memory stays bounded.
        const whole = Math.floor(pending.length / BLOCK_SIZE) * BLOCK_SIZE;
        if (whole > 0) {
          disk.write(offset, pending.subarray(0, whole));
          offset += whole;
          pending = pending.subarray(whole);
        }
      }
      if (pending.length) disk.write(offset, pending);
      offset += pending.length;
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" }).end(`${(e as Error).message}\n`);
      return;
    }
    const task = url.searchParams.get("task_id");
    if (task && this.role.pool.db.has("task", task)) {
      this.role.pool.db.update("task", task, { status: "success", progress: 1 });
    }
    this.world.log(`${this.role.pool.layout.name} PUT /import_raw_vdi -> ${offset} bytes`);
    res.writeHead(200, { "content-type": "text/plain" }).end();
  }
}
