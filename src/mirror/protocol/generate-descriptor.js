#!/usr/bin/env node
/**
 * Regenerates replication-descriptor.ts from replication.proto:
 *
 *   node src/mirror/protocol/generate-descriptor.js
 *
 * The descriptor is protobufjs's JSON form of the schema (Root#toJSON), the
 * same thing protobufjs builds when it parses the .proto. It is committed as
 * a TypeScript module so that tsc carries it into dist/ and nothing has to
 * find the .proto file at run time. test/unit/mirror/protocol/schema.test.ts
 * fails when the two disagree.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const protobuf = require('protobufjs');

const here = __dirname;
const source = fs.readFileSync(path.join(here, 'replication.proto'), 'utf8');
const json = protobuf.parse(source, { keepCase: false }).root.toJSON();

const out = `// GENERATED from replication.proto by generate-descriptor.js. Do not edit.
import type { INamespace } from 'protobufjs';

export const REPLICATION_DESCRIPTOR: INamespace = ${JSON.stringify(json, null, 2)};
`;
fs.writeFileSync(path.join(here, 'replication-descriptor.ts'), out);
process.stdout.write(`wrote ${path.join(here, 'replication-descriptor.ts')}\n`);
