// Static checks of the Bicep templates with a real Bicep parser (tree-sitter-bicep from npm),
// since the Bicep CLI itself cannot be installed from the registries this project uses.
//
// What is checked: syntax; every parameter has a @description; every identifier refers to a
// declaration (or a loop/lambda variable); no declared parameter or variable is unused; module
// files exist, get exactly their declared parameters (all required ones included), and only
// outputs they declare are read. What is not checked: resource types, API versions and property
// names (that needs the Bicep CLI's type definitions); `az deployment ... what-if` covers those.
//
// Usage: node infra/test/bicep.mjs check [files...]          (default: every .bicep under infra/)
//        node infra/test/bicep.mjs app-settings <file> <var>  (JSON: the keys of an app-settings variable)

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const infraDir = path.resolve(here, '..');
const requireFromTools = createRequire(path.resolve(infraDir, '..', 'test-tools', 'package.json'));
const Parser = requireFromTools('tree-sitter');
const Bicep = requireFromTools('tree-sitter-bicep');

const parser = new Parser();
parser.setLanguage(Bicep);

// tree-sitter-bicep 1.1.0 predates the `extension <alias>` statement (it knows the older
// `import`/`provider` forms). The statement is checked here and blanked out, keeping line numbers.
const EXTENSION_LINE = /^extension\s+(?:[A-Za-z_]\w*|'[^']+')(?:\s+as\s+[A-Za-z_]\w*)?\s*(?:\/\/.*)?$/;

// Namespaces and identifiers Bicep provides without a declaration.
const BUILT_IN_IDENTIFIERS = new Set(['az', 'sys']);

export function parseSource(source) {
  const errors = [];
  const lines = source.split('\n').map((line, index) => {
    if (/^\s*extension\b/.test(line)) {
      if (!EXTENSION_LINE.test(line.trim())) {
        errors.push({ line: index + 1, message: `malformed extension statement: ${line.trim()}` });
      }
      return ' '.repeat(line.length);
    }
    return line;
  });
  const tree = parser.parse(lines.join('\n'));
  return { tree, errors };
}

function* walk(node) {
  yield node;
  for (const child of node.namedChildren) {
    yield* walk(child);
  }
}

function at(node) {
  return node.startPosition.row + 1;
}

function firstIdentifier(node) {
  return node.namedChildren.find((child) => child.type === 'identifier');
}

const DECLARATIONS = new Set([
  'parameter_declaration',
  'variable_declaration',
  'resource_declaration',
  'module_declaration',
  'output_declaration',
  'type_declaration',
  'user_defined_function',
  'metadata_declaration',
]);

/**
 * Declarations of one file: `symbols` (name -> {kind, node}) for what expressions can refer to,
 * and `outputs` (name -> node), which live in their own namespace.
 */
function declarations(root) {
  const symbols = new Map();
  const outputs = new Map();
  for (const node of walk(root)) {
    if (!DECLARATIONS.has(node.type)) continue;
    const name = firstIdentifier(node);
    if (!name) continue;
    if (node.type === 'output_declaration') outputs.set(name.text, node);
    else if (node.type !== 'metadata_declaration') symbols.set(name.text, { kind: node.type, node });
  }
  return { symbols, outputs };
}

/** Identifier nodes that name something (not property keys, function names, or declarations). */
function isReference(node) {
  const parent = node.parent;
  if (!parent) return false;
  if (DECLARATIONS.has(parent.type) && firstIdentifier(parent)?.id === node.id) return false;
  if (parent.type === 'object_property' && parent.namedChildren[0]?.id === node.id) return false;
  if (parent.type === 'call_expression' && parent.childForFieldName('function')?.id === node.id) return false;
  if (parent.type === 'for_statement' && parent.namedChildren[0]?.id === node.id && parent.namedChildren.length > 2) {
    return false; // `for x in xs:` declares x
  }
  if (parent.type === 'lambda_expression' && parent.namedChildren.at(-1)?.id !== node.id) return false;
  for (let ancestor = parent; ancestor; ancestor = ancestor.parent) {
    if (ancestor.type === 'type' || ancestor.type === 'decorator') return false;
  }
  return true;
}

/** Names bound by enclosing loops and lambdas. */
function localNames(node) {
  const names = new Set();
  for (let ancestor = node.parent; ancestor; ancestor = ancestor.parent) {
    if (ancestor.type === 'for_statement') {
      for (const child of ancestor.namedChildren) {
        if (child.type === 'for_loop_parameters') {
          for (const variable of child.namedChildren) names.add(variable.text);
        }
      }
      const first = ancestor.namedChildren[0];
      if (first?.type === 'identifier' && ancestor.namedChildren.length > 2) names.add(first.text);
    }
    if (ancestor.type === 'lambda_expression') {
      for (const parameter of ancestor.namedChildren.slice(0, -1)) names.add(parameter.text);
    }
  }
  return names;
}

function hasDescription(declaration) {
  const previous = declaration.previousNamedSibling;
  if (previous?.type !== 'decorators') return false;
  return previous.namedChildren.some((decorator) => {
    const call = decorator.namedChildren[0];
    const name = call?.type === 'call_expression' ? call.childForFieldName('function')?.text : call?.text;
    return name === 'description' || name === 'sys.description';
  });
}

/** The object literal a module or resource body resolves to (through `if (...)`). */
function bodyObject(declaration) {
  for (const child of declaration.namedChildren) {
    if (child.type === 'object') return child;
    if (child.type === 'if_statement') return child.namedChildren.find((c) => c.type === 'object');
  }
  return undefined;
}

function objectKey(property) {
  const key = property.namedChildren[0];
  if (!key) return undefined;
  if (key.type === 'identifier') return key.text;
  if (key.type === 'string') return key.namedChildren.map((c) => c.text).join('');
  return undefined;
}

function objectProperties(object) {
  return object.namedChildren.filter((child) => child.type === 'object_property');
}

function stringValue(node) {
  return node.namedChildren.filter((c) => c.type === 'string_content').map((c) => c.text).join('');
}

const fileCache = new Map();

function loadFile(file) {
  const absolute = path.resolve(file);
  if (!fileCache.has(absolute)) {
    const source = fs.readFileSync(absolute, 'utf8');
    const { tree, errors } = parseSource(source);
    const { symbols, outputs } = declarations(tree.rootNode);
    fileCache.set(absolute, { tree, errors, declared: symbols, outputs });
  }
  return fileCache.get(absolute);
}

/** Every problem in one file, as `file:line: message` strings. */
export function checkFile(file) {
  const problems = [];
  const report = (line, message) => problems.push(`${path.relative(process.cwd(), file)}:${line}: ${message}`);
  const { tree, errors, declared } = loadFile(file);
  for (const error of errors) report(error.line, error.message);

  for (const node of walk(tree.rootNode)) {
    if (node.type === 'ERROR') report(at(node), `syntax error near '${node.text.slice(0, 60)}'`);
    else if (node.isMissing) report(at(node), `missing ${node.type}`);
  }
  if (tree.rootNode.hasError) {
    for (const node of walk(tree.rootNode)) {
      if (node.hasError && !node.namedChildren.some((c) => c.hasError) && node.type !== 'ERROR') {
        report(at(node), `syntax error in ${node.type}`);
      }
    }
    return problems;
  }

  const used = new Set();
  for (const node of walk(tree.rootNode)) {
    if (node.type !== 'identifier' || !isReference(node)) continue;
    const name = node.text;
    if (localNames(node).has(name)) continue;
    if (declared.has(name)) {
      used.add(name);
    } else if (!BUILT_IN_IDENTIFIERS.has(name)) {
      report(at(node), `'${name}' is not declared`);
    }
  }

  for (const [name, { kind, node }] of declared) {
    if (kind === 'parameter_declaration' && !hasDescription(node)) {
      report(at(node), `parameter '${name}' has no @description`);
    }
    if ((kind === 'parameter_declaration' || kind === 'variable_declaration') && !used.has(name)) {
      report(at(node), `${kind === 'parameter_declaration' ? 'parameter' : 'variable'} '${name}' is never used`);
    }
  }

  const modules = new Map();
  for (const [name, { kind, node }] of declared) {
    if (kind !== 'module_declaration') continue;
    const pathNode = node.namedChildren.find((c) => c.type === 'string');
    const target = path.resolve(path.dirname(file), stringValue(pathNode));
    if (!fs.existsSync(target)) {
      report(at(node), `module '${name}': ${stringValue(pathNode)} does not exist`);
      continue;
    }
    const module = loadFile(target);
    modules.set(name, module);
    const moduleParams = new Map();
    for (const [paramName, declaration] of module.declared) {
      if (declaration.kind === 'parameter_declaration') {
        // name, type, and a default value if there are more named children
        moduleParams.set(paramName, declaration.node.namedChildren.length > 2);
      }
    }
    const body = bodyObject(node);
    const paramsProperty = body && objectProperties(body).find((p) => objectKey(p) === 'params');
    const given = new Set();
    if (paramsProperty) {
      const value = paramsProperty.namedChildren[1];
      for (const property of value?.type === 'object' ? objectProperties(value) : []) {
        const key = objectKey(property);
        given.add(key);
        if (!moduleParams.has(key)) report(at(property), `module '${name}' has no parameter '${key}'`);
      }
    }
    for (const [paramName, hasDefault] of moduleParams) {
      if (!hasDefault && !given.has(paramName)) {
        report(at(node), `module '${name}' needs parameter '${paramName}'`);
      }
    }
  }

  // `<module>.outputs.<name>` (or `<module>!.outputs.<name>`) must name a declared output.
  for (const node of walk(tree.rootNode)) {
    if (node.type !== 'member_expression') continue;
    const object = node.childForFieldName('object');
    const property = node.childForFieldName('property');
    if (object?.type !== 'member_expression' || object.childForFieldName('property')?.text !== 'outputs') continue;
    const moduleName = object.childForFieldName('object')?.text;
    const module = modules.get(moduleName);
    if (!module) continue;
    if (!module.outputs.has(property.text)) {
      report(at(node), `module '${moduleName}' has no output '${property.text}'`);
    }
  }
  return problems;
}

export function bicepFiles(dir = infraDir) {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.bicep'))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort();
}

/**
 * The app setting names a variable defines: object literals, `union(...)` of them, variables
 * holding them, and both branches of `cond ? {...} : {...}` (those names are `conditional`).
 */
export function appSettings(file, variable) {
  const { declared } = loadFile(file);
  const settings = new Map();
  const collect = (node, conditional) => {
    switch (node.type) {
      case 'object':
        for (const property of objectProperties(node)) {
          const key = objectKey(property);
          settings.set(key, (settings.get(key) ?? true) && conditional);
        }
        return;
      case 'call_expression': {
        if (node.childForFieldName('function')?.text !== 'union') throw new Error(`${variable}: cannot read ${node.text.slice(0, 40)}`);
        for (const argument of node.childForFieldName('arguments').namedChildren) collect(argument, conditional);
        return;
      }
      case 'ternary_expression':
        collect(node.childForFieldName('consequence'), true);
        collect(node.childForFieldName('alternative'), true);
        return;
      case 'parenthesized_expression':
        collect(node.namedChildren[0], conditional);
        return;
      case 'identifier': {
        const target = declared.get(node.text);
        if (target?.kind !== 'variable_declaration') throw new Error(`${variable}: ${node.text} is not a variable`);
        collect(target.node.namedChildren[1], conditional);
        return;
      }
      default:
        throw new Error(`${variable}: cannot read ${node.type} '${node.text.slice(0, 40)}'`);
    }
  };
  const target = declared.get(variable);
  if (target?.kind !== 'variable_declaration') throw new Error(`${file} declares no variable ${variable}`);
  collect(target.node.namedChildren[1], false);
  return [...settings].map(([name, conditional]) => ({ name, conditional })).sort((a, b) => a.name.localeCompare(b.name));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'check') {
    const files = rest.length ? rest : bicepFiles();
    const problems = files.flatMap(checkFile);
    for (const problem of problems) console.error(problem);
    console.log(`${files.length} Bicep files checked, ${problems.length} problems`);
    process.exit(problems.length ? 1 : 0);
  } else if (command === 'app-settings' && rest.length === 2) {
    console.log(JSON.stringify(appSettings(rest[0], rest[1])));
  } else {
    console.error('usage: bicep.mjs check [files...] | app-settings <file> <variable>');
    process.exit(2);
  }
}
