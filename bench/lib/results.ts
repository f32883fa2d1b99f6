// bench/RESULTS.md is shared: each benchmark owns one "## <heading>" section and replaces only that section.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const TITLE = '# vpl011 benchmark results\n';

/**
 * Replaces the section whose heading line is exactly `## ${heading}` (up to the next `## ` heading or the end) with
 * `body`, or appends it; every other section is kept byte for byte. Creates the file if missing.
 */
export function replaceSection(file: string, heading: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : TITLE;
  const lines = text.split('\n');
  const head = `## ${heading}`;
  const start = lines.findIndex((l) => l.trimEnd() === head);
  const section = [head, '', ...body.trimEnd().split('\n'), ''];
  let out: string[];
  if (start < 0) {
    const base = [...lines];
    while (base.length > 0 && base[base.length - 1] === '') base.pop();
    out = [...base, '', ...section];
  } else {
    let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    if (end < 0) end = lines.length;
    out = [...lines.slice(0, start), ...section, ...lines.slice(end)];
  }
  let result = out.join('\n');
  if (!result.endsWith('\n')) result += '\n';
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, result);
  renameSync(tmp, file);
}

/** A GitHub-flavoured markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
