/** The OpenAPI 3.1 document, generated from the route declarations and their zod schemas. */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { statusOf, type ApiErrorCode } from './errors.js';
import type { AnyRoute } from './routes/route.js';
import { ErrorOut } from './routes/schemas.js';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** Codes every route may answer, by what the route takes. */
function errorCodes(route: AnyRoute): ApiErrorCode[] {
  const codes = new Set<ApiErrorCode>(route.errors);
  if (route.params || route.body) codes.add('invalid_request');
  if (route.body) {
    codes.add('malformed_json');
    codes.add('payload_too_large');
  }
  if (route.auth) codes.add('unauthorized');
  return [...codes];
}

export function buildOpenApiDocument(routes: readonly AnyRoute[], info: { version: string }): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'deviceToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The device token returned when the device was registered or added (256 random bits, base64url).',
  });
  for (const route of routes) {
    const byStatus = new Map<number, ApiErrorCode[]>();
    for (const code of errorCodes(route)) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
    const responses: RouteConfig['responses'] = {
      [route.success.status]: {
        description: route.success.description,
        ...(route.success.schema ? { content: { 'application/json': { schema: route.success.schema } } } : {}),
      },
    };
    for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[status] = { description: `error codes: ${codes.join(', ')}`, content: { 'application/json': { schema: ErrorOut } } };
    }
    registry.registerPath({
      method: route.method,
      path: route.path,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      ...(route.auth ? { security: [{ deviceToken: [] }] } : {}),
      request: {
        ...(route.params ? { params: route.params as never } : {}),
        ...(route.body ? { body: { required: true, content: { 'application/json': { schema: route.body } } } } : {}),
      },
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'GChat server API',
      version: info.version,
      description:
        'Accounts, devices and the key directory of a GChat server. The server stores public keys only and never sees plaintext or private keys. Binary values are base64url without padding. Every error is { "error": { "code", "message" } }.',
    },
    servers: [{ url: '/' }],
  });
}
