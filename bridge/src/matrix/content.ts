/** Matrix message content to and from the GChat text kind (replies, edits, notices, emotes). */

export interface MatrixText {
  body: string;
  replyToEvent: string | null;
  editOfEvent: string | null;
}

type Content = Record<string, unknown>;
const obj = (x: unknown): Content | null => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Content) : null);

/** Drops the quoted fallback clients put before a reply's text ("> <@u> text" lines, then a blank line). */
function stripReplyFallback(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith('>')) i++;
  if (i > 0 && lines[i] === '') return lines.slice(i + 1).join('\n');
  return body;
}

/** The text a Matrix m.room.message carries for GChat, or null for what GChat cannot show (media, etc.). */
export function textFromMatrix(content: Content, senderName: string): MatrixText | null {
  const rel = obj(content['m.relates_to']);
  const newContent = obj(content['m.new_content']);
  const isEdit = rel?.rel_type === 'm.replace' && typeof rel.event_id === 'string' && newContent !== null;
  const src = isEdit ? newContent : content;
  const msgtype = src.msgtype;
  if (typeof src.body !== 'string' || !['m.text', 'm.notice', 'm.emote'].includes(String(msgtype))) return null;
  let body = stripReplyFallback(src.body);
  if (msgtype === 'm.emote') body = `* ${senderName} ${body}`;
  const inReply = obj(rel?.['m.in_reply_to']);
  return {
    body,
    replyToEvent: !isEdit && typeof inReply?.event_id === 'string' ? inReply.event_id : null,
    editOfEvent: isEdit ? (rel!.event_id as string) : null,
  };
}

export function matrixFromText(body: string, replyToEvent: string | null, editOfEvent: string | null): Content {
  if (editOfEvent) {
    return { msgtype: 'm.text', body: `* ${body}`, 'm.new_content': { msgtype: 'm.text', body }, 'm.relates_to': { rel_type: 'm.replace', event_id: editOfEvent } };
  }
  return { msgtype: 'm.text', body, ...(replyToEvent ? { 'm.relates_to': { 'm.in_reply_to': { event_id: replyToEvent } } } : {}) };
}
