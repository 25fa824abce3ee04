/**
 * Where in the driver a failure came from: the first stack frame that is neither the kit's own
 * code, nor Node's or vitest's internals, nor an error class's constructor. Reports show it next
 * to the scenario step, so an author goes straight to the line (with source maps, their `.ts` line).
 */
import { dirname, isAbsolute, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

// This file sits in `src/` or `dist/` of the kit; its package root holds every kit frame.
const KIT_ROOT = dirname(dirname(fileURLToPath(import.meta.url))) + sep;

const FRAME = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/;
const FOREIGN = [/^node:/, /[\\/]node_modules[\\/](?:vitest|@vitest|tinypool|tinyspy|vite)[\\/]/, /^internal[\\/]/];

/** A stack frame's file, line and column, or undefined when the line is not a frame. */
export interface StackFrame {
  readonly fn: string | undefined;
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** Parses one line of a V8 stack trace. */
export function parseFrame(line: string): StackFrame | undefined {
  const m = FRAME.exec(line);
  if (!m) return undefined;
  let file = m[2]!;
  if (file.startsWith("async ")) file = file.slice(6);
  if (file.startsWith("file://")) {
    try {
      file = fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  return { fn: m[1], file, line: Number(m[3]), column: Number(m[4]) };
}

/**
 * The driver location of `err` (`file:line:column`), following `cause` links, or undefined when no
 * frame outside the kit is on its stack. `kitRoot` is where the kit's own files live.
 */
export function driverLocation(err: unknown, cwd: string = process.cwd(), kitRoot: string = KIT_ROOT): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    const found = firstDriverFrame(current.stack ?? "", kitRoot);
    if (found) return format(found, cwd);
    current = current.cause;
  }
  return undefined;
}

function firstDriverFrame(stack: string, kitRoot: string): StackFrame | undefined {
  for (const line of stack.split("\n").slice(1)) {
    const frame = parseFrame(line);
    if (!frame) continue;
    // The error class's own constructor says nothing about who raised it.
    if (frame.fn && /^new \S*Error$/.test(frame.fn)) continue;
    if (!isAbsolute(frame.file) || frame.file.startsWith(kitRoot)) continue;
    if (FOREIGN.some((re) => re.test(frame.file))) continue;
    return frame;
  }
  return undefined;
}

function format(frame: StackFrame, cwd: string): string {
  const rel = relative(cwd, frame.file);
  const shown = rel.startsWith("..") || isAbsolute(rel) ? frame.file : rel;
  return `${shown}:${frame.line}:${frame.column}`;
}
