/** A XAPI failure: the error code and its parameters, exactly as they go on the wire. */
export class XapiError extends Error {
  override readonly name = "XapiError";
  readonly code: string;
  readonly params: readonly string[];

  constructor(code: string, params: readonly string[] = []) {
    super(`${code}(${params.length})`);
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
