/**
 * The appservice registration the homeserver loads: random tokens, an exclusive ghost namespace,
 * the bot, and the flags an encrypted appservice needs (ephemeral events and to-device, MSC3202
 * device lists and key counts, MSC4190 device management).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { AppServiceRegistration } from 'matrix-appservice';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { type BridgeConfig, ConfigError, appserviceUrl } from './config.js';

/** The tokens of the example registration.yaml in the repository: refused outside development mode. */
export const EXAMPLE_TOKENS = ['dev-only-as-token-do-not-use-in-production', 'dev-only-hs-token-do-not-use-in-production'];

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function makeRegistration(c: BridgeConfig, tokens?: { as: string; hs: string }): Record<string, unknown> {
  const reg = new AppServiceRegistration(appserviceUrl(c));
  reg.setId('gchat');
  reg.setAppServiceToken(tokens?.as ?? randomBytes(32).toString('hex'));
  reg.setHomeserverToken(tokens?.hs ?? randomBytes(32).toString('hex'));
  reg.setSenderLocalpart(c.appservice.bot_localpart);
  reg.addRegexPattern('users', `@${escapeRegex(c.appservice.ghost_prefix)}.*:${escapeRegex(c.homeserver.domain)}`, true);
  reg.setRateLimited(false);
  reg.pushEphemeral = true;
  return { ...reg.getOutput(), receive_ephemeral: true, 'org.matrix.msc3202': true, 'io.element.msc4190': true };
}

export function writeRegistration(c: BridgeConfig, file: string): void {
  writeFileSync(file, stringify(makeRegistration(c)), { mode: 0o600 });
}

const Registration = z.object({ id: z.string(), url: z.string().nullable(), as_token: z.string().min(16), hs_token: z.string().min(16), sender_localpart: z.string() }).passthrough();
export type Registration = z.infer<typeof Registration>;

export function loadRegistration(c: BridgeConfig): Registration {
  let raw: unknown;
  try {
    raw = parse(readFileSync(c.appservice.registration, 'utf8'));
  } catch (e) {
    throw new ConfigError([`registration: cannot read ${c.appservice.registration}: ${(e as Error).message.split('\n')[0]} (make one with --generate-registration)`]);
  }
  const r = Registration.safeParse(raw);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `registration ${i.path.join('.')}: ${i.message}`));
  const problems: string[] = [];
  if (!c.development && (EXAMPLE_TOKENS.includes(r.data.as_token) || EXAMPLE_TOKENS.includes(r.data.hs_token)))
    problems.push('registration: it holds the example tokens from the repository; generate your own with --generate-registration (or set development: true for local development)');
  if (r.data.sender_localpart !== c.appservice.bot_localpart) problems.push(`registration: sender_localpart ${r.data.sender_localpart} differs from appservice.bot_localpart ${c.appservice.bot_localpart}`);
  if (problems.length) throw new ConfigError(problems);
  return r.data;
}
