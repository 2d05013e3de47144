// The Bicep templates parse and hang together, and the checker really catches what it claims to.
// Run by ./scripts/test (`node --test infra/test/*.test.mjs`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { appSettings, bicepFiles, checkFile, infraDir } from './bicep.mjs';

test('every Bicep file under infra/ passes the checks', () => {
  const files = bicepFiles();
  assert.ok(files.length >= 9, `expected main.bicep and its modules, found ${files.length}`);
  assert.deepEqual(files.flatMap(checkFile), []);
});

test('the handler app settings include the identity-based storage settings and telemetry', () => {
  const names = appSettings(path.join(infraDir, 'main.bicep'), 'handlerAppSettings')
    .filter((setting) => !setting.conditional)
    .map((setting) => setting.name);
  for (const name of [
    'AzureWebJobsStorage__credential',
    'AzureWebJobsStorage__clientId',
    'AzureWebJobsStorage__blobServiceUri',
    'AzureWebJobsStorage__queueServiceUri',
    'APPLICATIONINSIGHTS_CONNECTION_STRING',
    'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
    'KEY_VAULT_URL',
  ]) {
    assert.ok(names.includes(name), `${name} missing from handlerAppSettings: ${names.join(', ')}`);
  }
  assert.ok(!names.includes('AzureWebJobsStorage'), 'no connection string: storage is reached with the identity');
  assert.ok(!names.includes('FUNCTIONS_WORKER_RUNTIME'), 'Flex takes the runtime from functionAppConfig, not an app setting');
});

function problemsIn(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bicep-check-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    return checkFile(path.join(dir, 'main.bicep')).map((problem) => problem.replace(/^.*?:(\d+): /, '$1: '));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const MODULE = `@description('Name.')
param name string

@description('Size.')
param size int = 1

output id string = '\${name}-\${size}'
`;

test('a correct template has no problems', () => {
  const problems = problemsIn({
    'main.bicep': `extension microsoftGraphV1

@description('Where.')
param location string

var names = [for (n, i) in ['a', 'b']: '\${n}\${i}']

module m 'modules/m.bicep' = {
  name: 'm'
  params: {
    name: location
  }
}

output all array = filter(names, x => x != m.outputs.id)
`,
    'modules/m.bicep': MODULE,
  });
  assert.deepEqual(problems, []);
});

test('syntax errors are reported with their line', () => {
  const problems = problemsIn({ 'main.bicep': "@description('x')\nparam a string\nvar b = {\n  c: a\n  d: \n}\n" });
  assert.ok(problems.some((p) => /^\d+: (syntax error|missing)/.test(p)), problems.join('\n'));
});

test('undeclared identifiers, undocumented and unused parameters are reported', () => {
  const problems = problemsIn({
    'main.bicep': "param a string\n\n@description('Unused.')\nparam b string\n\noutput c string = '\${a}\${typo}'\n",
  });
  assert.deepEqual(problems.sort(), [
    "1: parameter 'a' has no @description",
    "4: parameter 'b' is never used",
    "6: 'typo' is not declared",
  ]);
});

test('module parameters and outputs are checked against the module file', () => {
  const problems = problemsIn({
    'main.bicep': `module m 'modules/m.bicep' = {
  name: 'm'
  params: {
    size: 2
    colour: 'red'
  }
}

module gone 'modules/missing.bicep' = {
  name: 'gone'
}

output o string = m.outputs.identifier
`,
    'modules/m.bicep': MODULE,
  });
  assert.deepEqual(problems.sort(), [
    "13: module 'm' has no output 'identifier'",
    "1: module 'm' needs parameter 'name'",
    "5: module 'm' has no parameter 'colour'",
    "9: module 'gone': modules/missing.bicep does not exist",
  ].sort());
});

test('a malformed extension statement is reported', () => {
  const problems = problemsIn({ 'main.bicep': 'extension microsoft graph v1\n' });
  assert.deepEqual(problems, ['1: malformed extension statement: extension microsoft graph v1']);
});
