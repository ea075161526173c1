/**
 * The OpenAPI 3.1 document, generated from one registry: every route declaration of the server
 * (v1 and delivery; routes/route.ts), their zod schemas, the stream frames, and the error table
 * (errors.ts). Every schema with an id is a component under #/components/schemas; nothing carries
 * its own $defs, so every $ref resolves from the document root.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { API_ERROR_CODES, ERRORS, statusOf, type ApiErrorCode } from './errors.js';
import { ClientFrame, DeviceMismatchError, QueueFullError, ServerFrame } from './delivery/schemas.js';
import { bodyOptional, type AnyRoute } from './routes/route.js';
import { ErrorOut } from './routes/schemas.js';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** Codes that carry details beside `error`, with the schema of the whole body. */
const ERROR_BODIES: Partial<Record<ApiErrorCode, z.ZodType>> = {
  device_mismatch: DeviceMismatchError,
  queue_full: QueueFullError,
};

/** Schemas no route names but the document must hold: the frames of the stream. */
const EXTRA_SCHEMAS: readonly z.ZodType[] = [ClientFrame, ServerFrame];

/** Every code a route may answer: its own, and the ones what it takes brings. */
export function routeErrorCodes(route: AnyRoute): ApiErrorCode[] {
  const codes = new Set<ApiErrorCode>(route.errors);
  if (route.params || route.query || route.body) codes.add('invalid_request');
  if (route.body) {
    codes.add('malformed_json');
    codes.add('payload_too_large');
    codes.add('unsupported_media_type');
  }
  if (route.auth) codes.add('unauthorized');
  codes.add('internal');
  return API_ERROR_CODES.filter((c) => codes.has(c));
}

type Schema = { $ref: string } | Record<string, unknown>;

/** The component name a schema is registered under (its `.meta({ id })`). */
function componentOf(schema: z.ZodType): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('an error body schema without an id');
  return id;
}

/**
 * The error body of one status: the Error component (or, for codes with details, their own
 * component) with `code` narrowed to the codes this route answers with that status.
 */
function errorSchema(codes: readonly ApiErrorCode[]): Schema {
  const narrowed = (cs: readonly ApiErrorCode[], component: string): Schema => ({
    allOf: [{ $ref: `#/components/schemas/${component}` }, { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: cs } } } } }],
  });
  const alternatives: Schema[] = codes.flatMap((c) => {
    const body = ERROR_BODIES[c];
    return body ? [narrowed([c], componentOf(body))] : [];
  });
  const plain = codes.filter((c) => !ERROR_BODIES[c]);
  if (plain.length > 0) alternatives.push(narrowed(plain, 'Error'));
  return alternatives.length === 1 ? alternatives[0]! : { anyOf: alternatives };
}

function responsesOf(route: AnyRoute): RouteConfig['responses'] {
  const responses: RouteConfig['responses'] = {
    [route.success.status]: {
      description: route.success.description,
      ...(route.success.schema ? { content: { 'application/json': { schema: route.success.schema } } } : {}),
    },
  };
  const byStatus = new Map<number, ApiErrorCode[]>();
  for (const code of routeErrorCodes(route)) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    responses[status] = {
      description: codes.map((c) => `${c}: ${ERRORS[c].about}`).join('; '),
      ...(status === 429 ? { headers: { 'Retry-After': { description: 'seconds to wait', schema: { type: 'integer', minimum: 1 } } } } : {}),
      content: { 'application/json': { schema: errorSchema(codes) as never } },
    };
  }
  return responses;
}

export function buildOpenApiDocument(routes: readonly AnyRoute[], info: { version: string }): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'deviceToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The device token returned when the device was registered or added (256 random bits, base64url).',
  });
  for (const route of routes) {
    registry.registerPath({
      method: route.method,
      path: route.path,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      ...(route.auth ? { security: [{ deviceToken: [] }] } : {}),
      request: {
        ...(route.params ? { params: route.params as never } : {}),
        ...(route.query ? { query: route.query as never } : {}),
        ...(route.body ? { body: { required: !bodyOptional(route), content: { 'application/json': { schema: route.body } } } } : {}),
      },
      responses: responsesOf(route),
    });
  }
  // Components every document holds, whether a route names them or not.
  const definitions = [
    ...registry.definitions,
    ...[ErrorOut, ...Object.values(ERROR_BODIES), ...EXTRA_SCHEMAS].map((schema) => ({ type: 'schema' as const, schema: schema! })),
  ];
  return new OpenApiGeneratorV31(definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'GChat server API',
      version: info.version,
      description:
        'Accounts, devices, the key directory and message delivery of a GChat server. The server stores public keys and sealed ' +
        'messages only and never sees plaintext or private keys. Binary values are base64url without padding. Every refusal is ' +
        '{ "error": { "code", "message" } } with a code from the Error schema (ErrorInfo.code lists them all with their statuses).',
    },
    servers: [{ url: '/' }],
  });
}
