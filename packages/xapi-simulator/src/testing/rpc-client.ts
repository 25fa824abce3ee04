// A minimal JSON-RPC client for the simulator's own tests (the driver has the real client).
import { Agent, request } from "node:http";

/** A XAPI failure as a test sees it. */
export class Failure extends Error {
  constructor(readonly description: string[]) {
    super(description.join(" "));
  }
  get code(): string {
    return this.description[0] ?? "";
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** POST a JSON-RPC 2.0 call; resolves the result or rejects with Failure [code, ...params]. */
export function jsonCall(url: string, method: string, params: unknown[]): Promise<unknown> {
  const body = JSON.stringify({ jsonrpc: "2.0", method, params, id: 1 });
  const u = new URL(`${url}/jsonrpc`);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const reply = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { result?: unknown; error?: { message: string; data: string[] } };
          if (reply.error) reject(new Failure([reply.error.message, ...reply.error.data]));
          else resolve(reply.result);
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A logged-in session on one endpoint. */
export class Session {
  private constructor(
    readonly url: string,
    readonly ref: string,
  ) {}

  static async login(url: string, user: string, password: string): Promise<Session> {
    const ref = (await jsonCall(url, "session.login_with_password", [user, password, "2.21", "xapi-simulator tests"])) as string;
    return new Session(url, ref);
  }

  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return jsonCall(this.url, method, [this.ref, ...params]) as Promise<T>;
  }

  /** The rejection of a call, as [code, ...params]; fails the test if the call succeeds. */
  async fails(method: string, ...params: unknown[]): Promise<string[]> {
    try {
      await this.call(method, ...params);
    } catch (e) {
      if (e instanceof Failure) return e.description;
      throw e;
    }
    throw new Error(`${method} succeeded`);
  }

  /** Run Async.<method> and wait for its task (polling task.get_record; tests only). */
  async task(method: string, ...params: unknown[]): Promise<{ status: string; result: string; error_info: string[]; ref: string }> {
    const ref = await this.call<string>(`Async.${method}`, ...params);
    for (;;) {
      const t = await this.call<{ status: string; result: string; error_info: string[] }>("task.get_record", ref);
      if (t.status !== "pending" && t.status !== "cancelling") return { ...t, ref };
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  logout(): Promise<unknown> {
    return this.call("session.logout");
  }
}

/** A VM from the template, provisioned (1 GiB root disk), not a template, with one VIF. */
export async function spawnVm(s: Session, name = "vm"): Promise<{ ref: string; uuid: string }> {
  const [template] = await s.call<string[]>("VM.get_by_name_label", "Debian Bookworm 12 (virtkit)");
  const ref = await s.call<string>("VM.clone", template, name);
  await s.call("VM.provision", ref);
  await s.call("VM.set_is_a_template", ref, false);
  const [net] = await s.call<string[]>("network.get_all");
  await s.call("VIF.create", { device: "0", network: net, VM: ref, MAC: "", MTU: 1500, other_config: {}, qos_algorithm_type: "", qos_algorithm_params: {} });
  const uuid = await s.call<string>("VM.get_uuid", ref);
  return { ref, uuid };
}
