/** An initial on a colour picked from the username (stable, no images). */
const HUES = [210, 260, 330, 20, 150, 190, 290, 45];

export function Avatar({ name, size = 40 }: { name: string; size?: number }) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return (
    <span class={`avatar hue-${HUES[h % HUES.length]} size-${size}`} aria-hidden="true">
      {(name[0] ?? '?').toUpperCase()}
    </span>
  );
}
