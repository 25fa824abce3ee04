/**
 * The guest agent behind XAPI's dom0 plugin `agent` (Nova's `_call_agent`): every call goes through
 * `host.call_plugin(host, "agent", fn, {id, dom_id, timeout, ...})`, answers a JSON string
 * `{"returncode", "message"}`, and fails with XENAPI_PLUGIN_FAILURE whose last line starts with
 * `TIMEOUT:`, `REBOOT:` or `NOT IMPLEMENTED:`. Those become the contract's typed errors.
 */
import { randomUUID } from "node:crypto";
import {
  AdminPasswordNotSupportedError,
  GuestAgentUnresponsiveError,
  PasswordSetFailedError,
  type Secret,
} from "@virtkit/core";
import { AgentKeyExchange, encryptForAgent } from "./agent-crypto.js";
import type { XapiClient } from "./xapi-client.js";
import { isXapiError } from "./xapi-error.js";
import type { XapiValue } from "./xml-rpc.js";

/** Where the agent runs: the VM's host and its domain id. */
export interface AgentTarget {
  readonly instanceId: string;
  readonly hostRef: string;
  /** The domain id now; re-read after a REBOOT answer. */
  domId(signal: AbortSignal): Promise<string>;
}

/** The agent's reply. */
interface AgentReply {
  readonly returncode: string;
  readonly message: string;
}

/** Why an agent call failed, as the plugin said it. */
type AgentFailure = "timeout" | "reboot" | "not-implemented" | "other";

function classify(err: unknown): AgentFailure | undefined {
  if (!isXapiError(err, "XENAPI_PLUGIN_FAILURE")) return undefined;
  const last = (err.xapiParams[err.xapiParams.length - 1] ?? "").split(/\r?\n/).filter(Boolean).pop() ?? "";
  if (last.includes("TIMEOUT:")) return "timeout";
  if (last.includes("REBOOT:")) return "reboot";
  if (last.includes("NOT IMPLEMENTED:")) return "not-implemented";
  return "other";
}

/** Talks to one instance's agent with a deadline shared by every step. */
export class GuestAgent {
  constructor(
    private readonly client: XapiClient,
    private readonly target: AgentTarget,
    /** Epoch ms by which everything must be done (the agent's timeout is cut to fit). */
    private readonly deadline: number,
    private readonly signal: AbortSignal,
  ) {}

  /** Nova's `set_admin_password`: key_init (D0 + the agent's public key), then password (0). */
  async setPassword(password: Secret): Promise<void> {
    const dh = new AgentKeyExchange();
    const init = await this.#call("key_init", { pub: dh.publicValue }, true);
    if (init.returncode !== "D0") {
      throw new PasswordSetFailedError(this.target.instanceId, `the agent's key_init answered code ${init.returncode}`);
    }
    let secret: string;
    try {
      secret = dh.sharedSecret(init.message.trim());
    } catch (err) {
      throw new PasswordSetFailedError(this.target.instanceId, (err as Error).message);
    }
    // The agent reads a line: the newline ends the password (as Nova sent it).
    const encPass = encryptForAgent(`${password.reveal()}\n`, secret);
    // Not retried after a REBOOT: the new boot has another key.
    const reply = await this.#call("password", { enc_pass: encPass }, false);
    if (reply.returncode !== "0") {
      throw new PasswordSetFailedError(this.target.instanceId, `the agent answered code ${reply.returncode}`);
    }
  }

  /** The agent's version (Nova's `get_agent_version`). */
  async version(): Promise<string> {
    return (await this.#call("version", {}, true)).message;
  }

  async #call(fn: string, extra: Record<string, string>, retryOnReboot: boolean): Promise<AgentReply> {
    for (let attempt = 0; ; attempt++) {
      const remainingMs = this.deadline - Date.now();
      // Leave the agent less than what is left, so its TIMEOUT answer (typed) beats our deadline.
      // The dom0 plugin reads the timeout with int(): whole seconds, at least one.
      const agentTimeoutSec = Math.max(1, Math.floor((remainingMs * 0.75) / 1000));
      const domId = await this.target.domId(this.signal);
      const args: Record<string, string> = {
        id: randomUUID(),
        dom_id: domId,
        timeout: String(agentTimeoutSec),
        ...extra,
      };
      try {
        const raw = await this.client.call<XapiValue>("host.call_plugin", [this.target.hostRef, "agent", fn, args], {
          signal: this.signal,
          timeoutMs: Math.max(1, remainingMs),
        });
        return parseReply(this.target.instanceId, fn, raw);
      } catch (err) {
        switch (classify(err)) {
          case "timeout":
            throw new GuestAgentUnresponsiveError(this.target.instanceId, { cause: err });
          case "not-implemented":
            throw new AdminPasswordNotSupportedError(`the guest agent does not implement ${fn}`, { cause: err });
          case "reboot":
            if (retryOnReboot && attempt === 0) continue;
            throw new PasswordSetFailedError(this.target.instanceId, "the guest rebooted during the exchange", {
              cause: err,
            });
          case "other":
            throw new PasswordSetFailedError(this.target.instanceId, `the agent plugin failed in ${fn}`, { cause: err });
          default:
            throw err;
        }
      }
    }
  }
}

function parseReply(instanceId: string, fn: string, raw: XapiValue): AgentReply {
  if (typeof raw !== "string") throw new PasswordSetFailedError(instanceId, `the agent's ${fn} reply is not a string`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new PasswordSetFailedError(instanceId, `the agent's ${fn} reply is not JSON`);
  }
  const r = parsed as { returncode?: unknown; message?: unknown };
  if (typeof r !== "object" || r === null || r.returncode === undefined) {
    throw new PasswordSetFailedError(instanceId, `the agent's ${fn} reply has no returncode`);
  }
  return { returncode: String(r.returncode), message: typeof r.message === "string" ? r.message : String(r.message ?? "") };
}
