/** A QR code as SVG rects (uqr computes the modules). Loaded on demand: only the safety-number view needs it. */
import { encode } from 'uqr';

export function QrCode({ text, label }: { text: string; label: string }) {
  const { data, size } = encode(text, { ecc: 'M', border: 2 });
  const path: string[] = [];
  data.forEach((row, y) => row.forEach((on, x) => on && path.push(`M${x} ${y}h1v1h-1z`)));
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={size} height={size} class="qr-bg" />
      <path d={path.join('')} class="qr-fg" />
    </svg>
  );
}
