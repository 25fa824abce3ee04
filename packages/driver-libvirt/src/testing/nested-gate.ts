/**
 * Whether the nested-QEMU tests can run here, shared by every `*.nested.test.ts`: they need
 * VIRTKIT_NESTED_QEMU=1 and a Docker engine that answers (testcontainers is pointed at it).
 */
import { configureTestcontainers, engineAnswers } from "@virtkit/nested-qemu";

/** Why the nested-QEMU tests are skipped here (warned once under `label`), or undefined when they run. */
export async function nestedQemuSkipReason(label: string): Promise<string | undefined> {
  const enabled = process.env.VIRTKIT_NESTED_QEMU === "1";
  const dockerHost = configureTestcontainers();
  const reason = !enabled
    ? "VIRTKIT_NESTED_QEMU=1 is not set (it needs a Docker engine: `bash scripts/docker.sh start`)"
    : !(await engineAnswers())
      ? `no Docker engine answers at ${dockerHost} (start one: \`bash scripts/docker.sh start\`)`
      : undefined;
  if (reason) console.warn(`[${label}] skipping: ${reason}`);
  return reason;
}
