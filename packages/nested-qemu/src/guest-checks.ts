/**
 * Checks of a guest that do not trust the driver: the guest agent asked through the host's
 * libvirtd on the environment's own connection (virDomainQemuAgentCommand), and a bare `qemu-system-x86_64` boot of the
 * same kernel and initramfs in the same container, the baseline of the boot figures.
 */
import type { WaitOptions } from "./abortable.js";
import { GUEST_CMDLINE, GUEST_INITRD_PATH, GUEST_KERNEL_PATH } from "./guest-layer.js";
import type { NestedHost } from "./nested-hosts.js";

/** The agent's answer, and when it came (epoch ms, this process's clock). */
export interface AgentAnswer {
  readonly reply: string;
  readonly answeredAtMs: number;
  readonly attempts: number;
}

/** Pause between pings while the agent is not up: the period of {@link bareQemuBoot}'s pings. */
const AGENT_POLL_MS = 50;

/**
 * Asks the domain's agent `command` (default guest-ping) until it answers, through the host's
 * libvirtd on the environment's own connection. libvirt answers "not connected" at once until the
 * agent has opened its port, so a ping costs the daemon next to nothing while the guest boots.
 */
export async function waitForAgent(
  host: NestedHost,
  domain: string,
  options: WaitOptions & { readonly command?: string } = {},
): Promise<AgentAnswer> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  const command = options.command ?? '{"execute":"guest-ping"}';
  let last = "";
  for (let attempts = 1; ; attempts++) {
    if (options.signal?.aborted)
      throw options.signal.reason instanceof Error ? options.signal.reason : new Error("aborted");
    const leftMs = deadline - Date.now();
    try {
      const reply = await host.agentCommand(domain, command, {
        timeoutMs: Math.max(1_000, Math.min(5_000, leftMs)),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { reply, answeredAtMs: Date.now(), attempts };
    } catch (err) {
      last = (err as Error).message;
      // A host whose daemon cannot be reached may be gone: then no wait helps, and it is said now.
      if (/connect|connection|closed|ECONN/i.test(last)) {
        const fault = await host.fault().catch(() => undefined);
        if (fault !== undefined) throw new Error(`the agent of ${domain} cannot answer: ${fault} (last: ${last})`);
      }
    }
    if (Date.now() + AGENT_POLL_MS >= deadline) {
      throw new Error(
        `the agent of ${domain} on ${host.name} did not answer within ${timeoutMs} ms (${attempts} attempts; last: ${last})`,
      );
    }
    await new Promise((r) => setTimeout(r, AGENT_POLL_MS));
  }
}

/** A bare QEMU boot: from the process start to the agent's first answer, and what the console showed. */
export interface BareBoot {
  readonly agentMs: number;
  readonly serial: string;
}

/**
 * The bare boot's agent poll, in Perl (the host image has perl-base, not python): one connection to
 * the agent's socket held open, as libvirt holds its own, a ping written every 50 ms and the first
 * answer taken. Reconnecting per ping (socat per try) made the guest's qemu-ga see a hang-up each
 * time and back off, which slowed the bare boot by seconds and flattered the driver's ratio.
 */
const AGENT_PING_PERL = [
  "my ($path, $secs) = @ARGV; my $tries = $secs * 100; my $s;",
  "until ($s = IO::Socket::UNIX->new(Peer => $path)) { exit 3 if --$tries < 0; select(undef, undef, undef, 0.01) }",
  '$s->autoflush(1); my $sel = IO::Select->new($s); my $buf = ""; my $n = 0;',
  "while (--$tries >= 0) {",
  '  print $s qq({"execute":"guest-ping"}\\n) if $n++ % 5 == 0;',
  "  next unless $sel->can_read(0.01);",
  "  exit 3 unless sysread($s, $buf, 4096, length $buf);",
  '  if ($buf =~ /"return"/) { print $buf; exit 0 }',
  "}",
  "exit 3;",
].join(" ");

/**
 * Boots the guest with plain `qemu-system-x86_64` (TCG, the same kernel, initramfs, command line,
 * memory, a blank qcow2 data disk and the agent's virtio port) inside `host`, and times it until
 * the agent first answers a guest-ping on its socket (one connection held open, a ping every 50 ms).
 */
export async function bareQemuBoot(
  host: NestedHost,
  options: WaitOptions & { readonly memoryMb?: number; readonly cmdline?: string } = {},
): Promise<BareBoot> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const script = `set -u
PING='${AGENT_PING_PERL}'
B=$(mktemp -d)
qemu-img create -q -f qcow2 "$B/disk.qcow2" 1G
t0=$(date +%s%3N)
qemu-system-x86_64 -machine pc,accel=tcg -cpu qemu64 -m "$2" -smp 1 -nodefaults -no-user-config -display none \\
  -kernel "$3" -initrd "$4" -append "$5" \\
  -chardev file,id=ser0,path="$B/serial.log" -serial chardev:ser0 \\
  -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \\
  -device virtio-serial-pci -chardev socket,id=qga0,path="$B/qga.sock",server=on,wait=off \\
  -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \\
  -drive file="$B/disk.qcow2",if=virtio,format=qcow2 -pidfile "$B/pid" -daemonize || exit 4
r=$(perl -MIO::Socket::UNIX -MIO::Select -e "$PING" "$B/qga.sock" "$1")
t1=$(date +%s%3N)
kill "$(cat "$B/pid")" 2>/dev/null
echo "agent_ms=$((t1 - t0))"
echo "reply=$r"
echo "--- serial"
cat "$B/serial.log"
rm -rf "$B"
case "$r" in *return*) exit 0 ;; esac
exit 3`;
  const out = await host.exec(
    [
      "sh",
      "-c",
      script,
      "sh",
      String(Math.ceil(timeoutMs / 1000)),
      String(options.memoryMb ?? 256),
      GUEST_KERNEL_PATH,
      GUEST_INITRD_PATH,
      options.cmdline ?? GUEST_CMDLINE,
    ],
    { timeoutMs: timeoutMs + 10_000, signal: options.signal },
  );
  const serial = out.stdout.split("--- serial\n")[1] ?? "";
  if (out.exitCode !== 0) {
    throw new Error(`bare QEMU boot on ${host.name} failed (exit ${out.exitCode}): ${out.stderr.trim()}\n${serial}`);
  }
  return { agentMs: Number(/^agent_ms=(\d+)$/m.exec(out.stdout)?.[1]), serial };
}

/**
 * libvirt's answers while the agent's channel is down or reconnecting: after a migration the guest's
 * virtio-serial port closes and reopens, and libvirt refuses commands ("not available for now")
 * until it sees the port again, even right after a ping answered. The command was not sent.
 */
/** The longest one agent command attempt waits (the rest of the budget is for asking again). */
const ATTEMPT_MAX_MS = 20_000;

const AGENT_RECONNECTING = /Guest agent is not (?:responding|connected)|Guest agent not available for now/i;

/**
 * Runs one guest agent command through the host's libvirtd (the environment's own connection);
 * resolves with its `return` value. While libvirt says the agent is reconnecting, asks again
 * (every 0.5 s) until `timeoutMs` passes.
 */
export async function agentCommand(
  host: NestedHost,
  domain: string,
  command: { readonly execute: string; readonly arguments?: Readonly<Record<string, unknown>> },
  options: WaitOptions = {},
): Promise<unknown> {
  const budgetMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    // One attempt may not take the whole budget: libvirt answers an agent that did not reply in
    // time with the same "not available for now", and a later attempt (after libvirt's re-sync)
    // often gets through where the first waited in vain.
    const leftMs = Math.min(ATTEMPT_MAX_MS, Math.max(1_000, deadline - Date.now()));
    let said: string;
    try {
      const reply = await host.agentCommand(domain, JSON.stringify(command), {
        timeoutMs: leftMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return (JSON.parse(reply) as { return: unknown }).return;
    } catch (err) {
      said = (err as Error).message;
    }
    if (!AGENT_RECONNECTING.test(said) || Date.now() + 500 >= deadline || options.signal?.aborted) {
      throw new Error(`agent ${command.execute} on ${domain} (attempt ${attempt}): ${said}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Reads a file inside the guest through its agent (guest-file-open/read/close). */
export async function readGuestFile(
  host: NestedHost,
  domain: string,
  path: string,
  options: WaitOptions = {},
): Promise<string> {
  const handle = await agentCommand(
    host,
    domain,
    { execute: "guest-file-open", arguments: { path, mode: "r" } },
    options,
  );
  try {
    const chunk = (await agentCommand(
      host,
      domain,
      { execute: "guest-file-read", arguments: { handle, count: 65536 } },
      options,
    )) as {
      "buf-b64": string;
    };
    return Buffer.from(chunk["buf-b64"], "base64").toString("utf8");
  } finally {
    await agentCommand(host, domain, { execute: "guest-file-close", arguments: { handle } }, options).catch(
      () => undefined,
    );
  }
}
