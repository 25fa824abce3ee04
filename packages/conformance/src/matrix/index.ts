export { buildMatrix } from "./build-matrix.js";
export type { SupportMatrix, MatrixCell, MatrixDriver, MatrixScenario, UnavailableDriver } from "./build-matrix.js";
export { renderMarkdown, STATUS_SYMBOL } from "./render-markdown.js";
export { renderHtml, htmlEscape } from "./render-html.js";
