/** pino, with message bodies, keys and tokens never logged (only ids and counts). */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: ['body', 'content', '*.body', '*.content', 'token', '*.token', 'password', 'key'], censor: '[redacted]' } });
}
