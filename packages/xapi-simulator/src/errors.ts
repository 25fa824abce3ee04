/** A XAPI failure: the error code and its parameters, exactly as they go on the wire. */
export class XapiError extends Error {
  override readonly name = "XapiError";
  readonly code: string;
  readonly params: readonly string[];

  constructor(code: string, params: readonly string[] = []) {
    // No stack: the error is a value for the wire (code and parameters), and the lifecycle checks
    // build one per refused operation each time a VM's allowed_operations is computed.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}(${params.length})`);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.params = params.map(String);
  }

  /** The wire form: `[CODE, ...params]`. */
  get description(): string[] {
    return [this.code, ...this.params];
  }
}

/** Raise `HANDLE_INVALID [class, ref]`. */
export function handleInvalid(cls: string, ref: string): never {
  throw new XapiError("HANDLE_INVALID", [cls, ref]);
}
