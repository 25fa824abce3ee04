// The wire is XAPI's: checked with clients this project did not write. Python's xmlrpc.client
// speaks XML-RPC to POST / (as XenAPI.py does), json-rpc-2.0's client speaks JSON-RPC to /jsonrpc.
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { JSONRPCClient } from "json-rpc-2.0";
import type { JSONRPCResponse } from "json-rpc-2.0";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Failure, Session, jsonCall } from "./testing/rpc-client.js";

let sim: XapiSimulator;
beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 0 });
});
afterAll(async () => {
  await sim.close();
});

const python = spawnSync("python3", ["--version"]).status === 0;

const PY_SCRIPT = String.raw`
import json, os, sys, time, xmlrpc.client
url = sys.argv[1]
p = xmlrpc.client.ServerProxy(url + "/", allow_none=True)
out = {}
r = p.session.login_with_password(os.environ["SIM_USER"], os.environ["SIM_PASSWORD"], "2.21", "python")
out["login_status"] = r["Status"]
s = r["Value"]
out["bad_login"] = p.session.login_with_password("root", "wrong", "2.21", "python")
vms = p.VM.get_all_records(s)["Value"]
tpl = [ref for ref, v in vms.items() if v["name_label"] == "Debian Bookworm 12 (virtkit)"][0]
rec = vms[tpl]
out["types"] = {k: type(rec[k]).__name__ for k in ("memory_static_max", "is_a_template", "HVM_shadow_multiplier", "other_config", "VBDs", "power_state")}
out["memory_static_max"] = rec["memory_static_max"]
sr = p.pool.get_default_SR(s, p.pool.get_all(s)["Value"][0])["Value"]
vdi = p.VDI.create(s, {"name_label": "py", "SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False, "read_only": False, "other_config": {}})
out["vdi_create"] = vdi["Status"]
out["vdi_size"] = p.VDI.get_virtual_size(s, vdi["Value"])["Value"]
task = p.Async.VM.clone(s, tpl, "from-python")["Value"]
for _ in range(200):
    t = p.task.get_record(s, task)["Value"]
    if t["status"] != "pending": break
    time.sleep(0.01)
out["task_status"] = t["status"]
out["task_result"] = t["result"]
out["task_progress_type"] = type(t["progress"]).__name__
ev = getattr(p, "event.from")(s, ["vm"], "", 0.1)["Value"]
out["event_token"] = ev["token"]
out["event_classes"] = sorted(set(e["class"] for e in ev["events"]))
out["bad_state"] = p.VM.start(s, tpl, False, False)
out["unknown"] = p.VM.frobnicate(s)
p.session.logout(s)
out["after_logout"] = p.VM.get_all(s)
print(json.dumps(out))
`;

describe("XML-RPC with Python's xmlrpc.client", { timeout: 30_000 }, () => {
  it.skipIf(!python)("logs in, reads typed records, runs a task and reads events as XAPI encodes them (skipped only when python3 is missing)", async () => {
    // Asynchronously: the simulator answers from this process's event loop.
    const run = await promisify(execFile)("python3", ["-c", PY_SCRIPT, sim.url], {
      env: { ...process.env, SIM_USER: sim.username, SIM_PASSWORD: sim.password },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.stderr).toBe("");
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(out.login_status).toBe("Success");
    expect(out.bad_login).toEqual({ Status: "Failure", ErrorDescription: ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"] });
    // XAPI sends int as a string of digits over XML-RPC, float as <double>, bool as <boolean>.
    expect(out.types).toEqual({ memory_static_max: "str", is_a_template: "bool", HVM_shadow_multiplier: "float", other_config: "dict", VBDs: "list", power_state: "str" });
    expect(out.memory_static_max).toBe(String(1024 ** 3));
    expect(out.vdi_create).toBe("Success");
    expect(out.vdi_size).toBe("1048576");
    expect(out.task_status).toBe("success");
    expect(out.task_result).toMatch(/^<value>OpaqueRef:[0-9a-f-]{36}<\/value>$/);
    expect(out.task_progress_type).toBe("float");
    expect(out.event_token).toMatch(/^\d{20},\d{20}$/);
    expect(out.event_classes).toEqual(["vm"]);
    expect((out.bad_state as { ErrorDescription: string[] }).ErrorDescription[0]).toBe("VM_IS_TEMPLATE");
    expect(out.unknown).toEqual({ Status: "Failure", ErrorDescription: ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"] });
    expect((out.after_logout as { ErrorDescription: string[] }).ErrorDescription[0]).toBe("SESSION_INVALID");
  });
});

describe("JSON-RPC with the json-rpc-2.0 client", () => {
  function client(): JSONRPCClient {
    const c: JSONRPCClient = new JSONRPCClient(async (request) => {
      const res = await fetch(`${sim.url}/jsonrpc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request) });
      c.receive((await res.json()) as JSONRPCResponse);
    });
    return c;
  }

  it("logs in, reads records with JSON numbers for ints, and gets XAPI's error object", async () => {
    const c = client();
    const s = (await c.request("session.login_with_password", [sim.username, sim.password, "2.21", "json-rpc-2.0"])) as string;
    expect(s).toMatch(/^OpaqueRef:/);
    const vms = (await c.request("VM.get_all_records", [s])) as Record<string, { name_label: string; memory_static_max: unknown; is_a_template: unknown }>;
    const first = Object.values(vms).find((v) => v.name_label === "Other install media");
    expect(typeof first?.memory_static_max).toBe("number");
    expect(first?.is_a_template).toBe(true);
    const err = await Promise.resolve(c.request("VM.get_record", [s, "OpaqueRef:nope"])).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 1, message: "HANDLE_INVALID", data: ["VM", "OpaqueRef:nope"] });
    await c.request("session.logout", [s]);
    const invalid = await Promise.resolve(c.request("VM.get_all", [s])).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ code: 1, message: "SESSION_INVALID", data: [s] });
  });

  it("answers JSON-RPC 1.0 in its own shape: result, error as [code, ...params], id", async () => {
    const res = await fetch(`${sim.url}/jsonrpc`, { method: "POST", body: JSON.stringify({ method: "session.login_with_password", params: ["root", "x", "1", "o"], id: "xyz" }) });
    expect(await res.json()).toEqual({ result: null, error: ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"], id: "xyz" });
  });

  it("answers a body that is no call (null, a number, an array, no method, not JSON) with a JSON-RPC error object", async () => {
    const post = async (body: string) => {
      const res = await fetch(`${sim.url}/jsonrpc`, { method: "POST", headers: { "content-type": "application/json" }, body });
      return { status: res.status, type: res.headers.get("content-type"), json: (await res.json()) as unknown };
    };
    for (const body of ["null", "42", '"VM.get_all"', "[]", '[{"jsonrpc":"2.0","method":"session.logout","params":[],"id":1}]']) {
      expect(await post(body), body).toEqual({
        status: 200,
        type: "application/json",
        json: { jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null },
      });
    }
    expect((await post('{"jsonrpc":"2.0","params":[],"id":7}')).json).toEqual({
      jsonrpc: "2.0",
      error: { code: -32600, message: "Invalid Request" },
      id: 7,
    });
    expect((await post("{not json")).json).toEqual({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null });
    // The simulator still answers calls afterwards.
    const s = await Session.login(sim.url, sim.username, sim.password);
    await s.logout();
  });

  it("checks parameter counts and types as XAPI's unmarshaller does", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    expect(await s.fails("VM.get_record")).toEqual(["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "2", "1"]);
    expect(await s.fails("VM.set_VCPUs_max", "OpaqueRef:x", "many")).toEqual(["FIELD_TYPE_ERROR", "value"]);
    expect(await s.fails("Async.VM.get_record", "OpaqueRef:x")).toEqual(["MESSAGE_METHOD_UNKNOWN", "Async.VM.get_record"]);
    expect(await s.fails("VM.get_by_uuid", "no-such")).toEqual(["UUID_INVALID", "VM", "no-such"]);
    const err = await jsonCall(sim.url, "VM.get_all", ["OpaqueRef:forged"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Failure);
    expect((err as Failure).description).toEqual(["SESSION_INVALID", "OpaqueRef:forged"]);
    await s.logout();
  });

  it("the slave answers every call with HOST_IS_SLAVE [master address]; the master's port is the same", async () => {
    const err = await jsonCall(sim.slaveUrl, "session.login_with_password", [sim.username, sim.password, "2.21", "t"]).catch((e: unknown) => e);
    expect((err as Failure).description).toEqual(["HOST_IS_SLAVE", new URL(sim.url).hostname]);
    expect(new URL(sim.slaveUrl).port).toBe(new URL(sim.url).port);
  });
});
