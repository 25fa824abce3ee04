import { inspect } from "node:util";

const REDACTED = "***";

/**
 * A value that must never be printed: admin passwords, API credentials. String conversion,
 * JSON, `util.inspect` and template literals all show `***`; only {@link Secret.reveal}
 * gives the value, and only code that hands it to a hypervisor should call it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Call only at the point where it crosses to the hypervisor. */
  reveal(): string {
    return this.#value;
  }

  /** Length of the secret, for validation without revealing it. */
  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/** True for a {@link Secret} from any copy of this package. */
export function isSecret(value: unknown): value is Secret {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { reveal?: unknown }).reveal === "function" &&
    String(value) === REDACTED
  );
}
