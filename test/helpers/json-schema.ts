/**
 * A JSON Schema (2020-12) checker for the part of it the payee's OpenAPI document uses: `type`,
 * `const`, `enum`, `required`, `properties`, `additionalProperties: false`, `items`, `minimum`,
 * `pattern`, `oneOf` and local `$ref`s. Small on purpose: the project has no schema validator
 * of its own (ajv is only a transitive dependency of eslint, at a draft-07 version), and a
 * keyword this checker does not know makes it fail loudly rather than pass silently.
 */

type Schema = Record<string, unknown>;

const KNOWN = new Set(['type', 'const', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'minimum', 'pattern', 'oneOf', '$ref', 'description']);

/** @returns the problems of `value` against `schema` ("" paths are the root); empty when it conforms. */
export function schemaProblems(value: unknown, schema: Schema, root: Schema, at = '$'): string[] {
  for (const key of Object.keys(schema)) if (!KNOWN.has(key)) throw new Error(`json-schema helper: unsupported keyword ${key} at ${at}`);
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], root);
    if (!target) throw new Error(`unresolved $ref ${schema.$ref}`);
    return schemaProblems(value, target as Schema, root, at);
  }
  const problems: string[] = [];
  if ('const' in schema && value !== schema.const) problems.push(`${at}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (typeof schema.type === 'string' && !hasType(value, schema.type)) return [...problems, `${at}: expected ${schema.type}, got ${JSON.stringify(value)}`];
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) problems.push(`${at}: ${value} < ${schema.minimum}`);
  if (typeof schema.pattern === 'string' && typeof value === 'string' && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  if (Array.isArray(schema.oneOf)) {
    const matching = (schema.oneOf as Schema[]).filter((s) => schemaProblems(value, s, root, at).length === 0).length;
    if (matching !== 1) problems.push(`${at}: matches ${matching} of oneOf, not exactly 1`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const name of (schema.required as string[] | undefined) ?? []) if (!(name in object)) problems.push(`${at}: missing ${name}`);
    const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [name, v] of Object.entries(object)) {
      if (properties[name]) problems.push(...schemaProblems(v, properties[name], root, `${at}.${name}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected ${name}`);
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => problems.push(...schemaProblems(v, schema.items as Schema, root, `${at}[${i}]`)));
  return problems;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}
