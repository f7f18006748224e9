import { AmberError } from '../kernel/errors';

/**
 * Anything wrong with an image file or an image set: unreadable, truncated,
 * wrong magic, a message that does not match its schema, an unknown type.
 * The message names the file (and, where it applies, the entry and byte
 * offset).
 */
export class ImageError extends AmberError {}

/** A message that does not fit its schema; the caller adds file/entry. */
export class SchemaError extends Error {}
