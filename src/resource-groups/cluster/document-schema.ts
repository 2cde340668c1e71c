/**
 * The shape of a cluster document read from disk or received from the
 * peer: every key, its type, nothing unknown. A document that does not fit
 * is refused with the key at fault; the content rules (unique names, sizes)
 * are the reducer's (changes.ts).
 */
import { FAILBACK_MODES } from '../config';
import { Issue, Spec, array, integerIn, isBoolean, isString, leaf, object, oneOf, required, validate } from '../node/schema';
import { DOCUMENT_FORMAT, type ClusterDocument } from './document';

/** null, or a value `spec` accepts. */
const nullOr = (spec: Spec): Spec =>
  leaf((v) => {
    if (v === null) return null;
    const issue = validate(spec, v)[0];
    return issue ? `is not null nor valid (${issue.key === '' ? '' : `${issue.key}: `}${issue.problem})` : null;
  });
const text = leaf((v) => (typeof v === 'string' ? null : 'is not a string'));
const credential = object({ user: required(leaf(isString)), secret: required(leaf(isString)) });

export const DOCUMENT_SCHEMA: Spec = object({
  format: required(leaf(oneOf([DOCUMENT_FORMAT]))),
  clusterId: required(leaf(isString)),
  version: required(leaf(integerIn(1, Number.MAX_SAFE_INTEGER))),
  updatedAt: required(nullOr(text)),
  updatedBy: required(nullOr(text)),
  paired: required(leaf(isBoolean)),
  nodes: required(array(object({ id: required(leaf(isString)), api: required(nullOr(text)), maintenance: required(leaf(isBoolean)) }), 2)),
  volumes: required(
    array(
      object({
        id: required(leaf(isString)),
        name: required(leaf(isString)),
        iqn: required(leaf(isString)),
        sizeBytes: required(leaf(integerIn(1, Number.MAX_SAFE_INTEGER))),
        thin: required(leaf(isBoolean)),
        blockSize: required(leaf(oneOf([512, 4096]))),
        physicalBlockSize: required(leaf(integerIn(512, 65536))),
        resourceGroup: required(nullOr(leaf(isString))),
        owner: required(leaf(isString)),
        access: required(
          object({
            allowedInitiators: required(nullOr(array(leaf(isString)))),
            chap: required(nullOr(credential)),
            mutualChap: required(nullOr(credential)),
          }),
        ),
      }),
    ),
  ),
  resourceGroups: required(
    array(
      object({
        name: required(leaf(isString)),
        preferredNode: required(leaf(isString)),
        aliasIps: required(array(object({ address: required(leaf(isString)), prefix: required(leaf(integerIn(0, 128))), interface: required(leaf(isString)) }))),
        failback: required(leaf(oneOf(FAILBACK_MODES))),
      }),
    ),
  ),
});

export class DocumentShapeError extends Error {
  override readonly name = 'DocumentShapeError';
  constructor(
    readonly source: string,
    readonly issues: readonly Issue[],
  ) {
    super(`${source}: ${issues.map((i) => (i.key === '' ? i.problem : `${i.key}: ${i.problem}`)).join('; ')}`);
  }
}

/** `value` as a cluster document; throws DocumentShapeError naming `source` and every bad key. */
export function checkDocument(value: unknown, source: string): ClusterDocument {
  const issues = validate(DOCUMENT_SCHEMA, value);
  if (issues.length > 0) throw new DocumentShapeError(source, issues);
  return value as ClusterDocument;
}
