'use strict';
// The part of JSON Schema (2020-12) that pydantic's model_json_schema() writes for our event
// payloads, checked by hand: no libraries. A keyword this file does not know makes compile()
// throw, so a payload model that starts using one fails at start (and in the node tests), not by
// letting events through unchecked.

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$comment', '$schema', '$id', 'deprecated']);
const ASSERTIONS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'anyOf', 'allOf', 'enum', 'const',
  'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minItems', 'maxItems', 'format', '$ref', '$defs',
]);
// RFC 3339, as pydantic writes and reads datetimes.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$/;

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value; // string, boolean, object
}

function hasType(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function describe(value) {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** Returns validate(value) -> a list of problems ("at /path: what"), empty when valid. */
function compile(root) {
  const check = (schema, where) => {
    if (schema === true || schema === false) return;
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new Error(`schema at ${where || '/'} is not an object`);
    }
    for (const key of Object.keys(schema)) {
      if (!ANNOTATIONS.has(key) && !ASSERTIONS.has(key)) {
        throw new Error(`schema keyword ${JSON.stringify(key)} at ${where || '/'} is not supported by services/notifier/schema.js`);
      }
    }
    if (schema.format !== undefined && schema.format !== 'date-time') {
      throw new Error(`schema format ${JSON.stringify(schema.format)} at ${where || '/'} is not supported`);
    }
    if (schema.$ref !== undefined && !String(schema.$ref).startsWith('#/$defs/')) {
      throw new Error(`schema $ref ${schema.$ref} is not supported (only #/$defs/...)`);
    }
    for (const [name, sub] of Object.entries(schema.properties || {})) check(sub, `${where}/properties/${name}`);
    for (const [name, sub] of Object.entries(schema.$defs || {})) check(sub, `${where}/$defs/${name}`);
    for (const [i, sub] of (schema.anyOf || []).entries()) check(sub, `${where}/anyOf/${i}`);
    for (const [i, sub] of (schema.allOf || []).entries()) check(sub, `${where}/allOf/${i}`);
    if (schema.items !== undefined) check(schema.items, `${where}/items`);
    if (typeof schema.additionalProperties === 'object') check(schema.additionalProperties, `${where}/additionalProperties`);
  };
  check(root, '');
  const patterns = new Map();
  const regex = (source) => {
    if (!patterns.has(source)) patterns.set(source, new RegExp(source, 'u'));
    return patterns.get(source);
  };
  // Compile every pattern now: one JavaScript cannot read fails at start.
  JSON.stringify(root, (key, value) => (key === 'pattern' && typeof value === 'string' ? (regex(value), value) : value));

  const resolve = (ref) => {
    const name = ref.slice('#/$defs/'.length);
    const target = root.$defs && root.$defs[name];
    if (target === undefined) throw new Error(`schema $ref ${ref} names nothing`);
    return target;
  };

  const validate = (schema, value, path, problems) => {
    const at = path || '/';
    if (schema === true) return;
    if (schema === false) {
      problems.push(`at ${at}: no value is allowed here`);
      return;
    }
    if (schema.$ref !== undefined) validate(resolve(schema.$ref), value, path, problems);
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some((t) => hasType(value, t))) {
        problems.push(`at ${at}: expected ${types.join(' or ')}, got ${typeOf(value)} ${describe(value)}`);
        return; // the other keywords would only repeat it
      }
    }
    if (schema.enum !== undefined && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
      problems.push(`at ${at}: ${describe(value)} is not one of ${describe(schema.enum)}`);
    }
    if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(value)) {
      problems.push(`at ${at}: must be ${describe(schema.const)}`);
    }
    if (schema.anyOf !== undefined) {
      const failures = schema.anyOf.map((sub) => {
        const found = [];
        validate(sub, value, path, found);
        return found;
      });
      if (failures.every((f) => f.length > 0)) {
        problems.push(`at ${at}: matches none of: ${failures.map((f) => f.join('; ')).join(' | ')}`);
      }
    }
    for (const sub of schema.allOf || []) validate(sub, value, path, problems);
    if (typeof value === 'string') {
      const length = [...value].length; // code points, as JSON Schema counts
      if (schema.minLength !== undefined && length < schema.minLength) problems.push(`at ${at}: shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && length > schema.maxLength) problems.push(`at ${at}: longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) {
        problems.push(`at ${at}: ${describe(value)} does not match ${schema.pattern}`);
      }
      if (schema.format === 'date-time' && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) {
        problems.push(`at ${at}: ${describe(value)} is not an RFC 3339 date-time`);
      }
    }
    if (typeof value === 'number') {
      if (schema.minimum !== undefined && value < schema.minimum) problems.push(`at ${at}: less than ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) problems.push(`at ${at}: more than ${schema.maximum}`);
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
        problems.push(`at ${at}: not more than ${schema.exclusiveMinimum}`);
      }
      if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
        problems.push(`at ${at}: not less than ${schema.exclusiveMaximum}`);
      }
    }
    if (Array.isArray(value)) {
      if (schema.minItems !== undefined && value.length < schema.minItems) problems.push(`at ${at}: fewer than ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) problems.push(`at ${at}: more than ${schema.maxItems} items`);
      if (schema.items !== undefined) value.forEach((item, i) => validate(schema.items, item, `${path}/${i}`, problems));
    }
    if (typeOf(value) === 'object') {
      const properties = schema.properties || {};
      for (const name of schema.required || []) {
        if (!Object.prototype.hasOwnProperty.call(value, name)) problems.push(`at ${at}: ${name} is required`);
      }
      for (const [name, item] of Object.entries(value)) {
        if (Object.prototype.hasOwnProperty.call(properties, name)) {
          validate(properties[name], item, `${path}/${name}`, problems);
        } else if (schema.additionalProperties !== undefined) {
          validate(schema.additionalProperties, item, `${path}/${name}`, problems);
        }
      }
    }
  };

  return (value) => {
    const problems = [];
    validate(root, value, '', problems);
    return problems;
  };
}

module.exports = { compile };
