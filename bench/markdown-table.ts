// One Markdown table writer for the standalone benches and the report modules, so every table in
// RESULTS.md and bench/results/*.md is built the same way.

/** Column alignment: 'right' for figures (`---:`), 'left' (default) for labels. */
export type ColumnAlign = 'left' | 'right';

/** A Markdown table: header, separator (aligned per column) and one line per row. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ColumnAlign[] = []): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (align[i] === 'right' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}
