// A parser for the Nix expression language, enough to syntax-check flake.nix without a `nix`
// binary (none is installed here): the lexer knows comments, "strings" and ''indented strings''
// with ${} interpolation (nested), paths, URIs and every operator; the parser is recursive
// descent over the manual's precedence table (select, application, unary minus, ?, ++, * /,
// + -, !, //, comparisons, == !=, &&, ||, ->) with lambdas (x: / { a, b ? e, ... } @ x:),
// let … in, with, assert, if/then/else, rec and attribute paths with ${} and inherit.
// It does not evaluate: unknown variables, type errors and wrong option names pass.

export type Node =
  | { t: 'id'; name: string }
  | { t: 'num' | 'path' | 'uri'; text: string }
  | { t: 'str'; parts: (string | Node)[] }
  | { t: 'list'; items: Node[] }
  | { t: 'attrs'; rec: boolean; bindings: Binding[] }
  | { t: 'let'; bindings: Binding[]; body: Node }
  | { t: 'lambda'; arg: string | null; formals: { names: string[]; ellipsis: boolean } | null; body: Node }
  | { t: 'app'; f: Node; arg: Node }
  | { t: 'select'; e: Node; path: Attr[]; or: Node | null }
  | { t: 'has'; e: Node; path: Attr[] }
  | { t: 'op'; op: string; l: Node; r: Node }
  | { t: 'unop'; op: string; e: Node }
  | { t: 'if'; c: Node; a: Node; b: Node }
  | { t: 'with' | 'assert'; e: Node; body: Node };
export type Attr = string | Node;
export type Binding = { path: Attr[]; value: Node } | { inherit: string[]; from: Node | null };

type Tok = { k: 'id' | 'num' | 'path' | 'uri' | 'op' | 'str' | 'eof'; v: string; node?: Node; at: number };

const KEYWORDS = new Set(['let', 'in', 'if', 'then', 'else', 'assert', 'with', 'rec', 'inherit']);
const OPS = ['...', '++', '//', '==', '!=', '<=', '>=', '&&', '||', '->', '${', ...'{}[]();:,.=@?+-*/<>!'];

export class NixSyntaxError extends Error {}

export class NixParser {
  pos = 0;
  constructor(private readonly src: string) {}

  fail(msg: string, at = this.pos): never {
    const line = this.src.slice(0, at).split('\n').length;
    throw new NixSyntaxError(`line ${line}: ${msg}`);
  }

  private skip(): void {
    for (;;) {
      const m = /^(?:\s+|#[^\n]*|\/\*[\s\S]*?\*\/)/.exec(this.src.slice(this.pos));
      if (!m || !m[0]) {
        if (this.src.startsWith('/*', this.pos)) this.fail('unterminated comment');
        return;
      }
      this.pos += m[0].length;
    }
  }

  private lex(): Tok {
    this.skip();
    const at = this.pos;
    const rest = this.src.slice(this.pos);
    if (!rest) return { k: 'eof', v: '', at };
    let m: RegExpExecArray | null;
    if (rest[0] === '"') return this.string(at);
    if (rest.startsWith("''")) return this.indented(at);
    if ((m = /^[a-zA-Z][a-zA-Z0-9+.-]*:[a-zA-Z0-9%/?:@&=+$,\-_.!~*']+/.exec(rest))) return this.take('uri', m[0], at);
    // as Nix's lexer: anything with a slash between path characters is a path (`6/2` too: a
    // division needs spaces), `~/x` is one, and `<nixpkgs>` is a search path
    if ((m = /^(?:~|[a-zA-Z0-9._+-]*)(?:\/[a-zA-Z0-9._+-]+)+\/?/.exec(rest))) return this.take('path', m[0], at);
    if ((m = /^<[a-zA-Z0-9._+-]+(?:\/[a-zA-Z0-9._+-]+)*>/.exec(rest))) return this.take('path', m[0], at);
    if ((m = /^[a-zA-Z_][a-zA-Z0-9_'-]*/.exec(rest))) return this.take('id', m[0], at);
    if ((m = /^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(rest))) return this.take('num', m[0], at);
    const op = OPS.find((o) => rest.startsWith(o));
    if (op) return this.take('op', op, at);
    return this.fail(`unexpected character ${JSON.stringify(rest[0])}`);
  }

  private take(k: Tok['k'], v: string, at: number): Tok {
    this.pos = at + v.length;
    return { k, v, at };
  }

  private interpolation(): Node {
    this.pos += 2; // ${
    const e = this.expr();
    this.expect('}');
    return e;
  }

  private string(at: number): Tok {
    this.pos = at + 1;
    const parts: (string | Node)[] = [];
    let lit = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) this.fail('unterminated string', at);
      if (c === '"') break;
      if (c === '\\') {
        if (this.pos + 1 >= this.src.length) this.fail('unterminated string', at);
        lit += this.src[this.pos + 1];
        this.pos += 2;
      } else if (this.src.startsWith('$${', this.pos)) {
        lit += '$${';
        this.pos += 3;
      } else if (this.src.startsWith('${', this.pos)) {
        if (lit) parts.push(lit);
        lit = '';
        parts.push(this.interpolation());
      } else {
        lit += c;
        this.pos++;
      }
    }
    this.pos++;
    if (lit) parts.push(lit);
    return { k: 'str', v: '"', node: { t: 'str', parts }, at };
  }

  private indented(at: number): Tok {
    this.pos = at + 2;
    const parts: (string | Node)[] = [];
    let lit = '';
    for (;;) {
      if (this.pos >= this.src.length) this.fail("unterminated ''string''", at);
      if (this.src.startsWith("'''", this.pos)) (lit += "''"), (this.pos += 3);
      else if (this.src.startsWith("''$", this.pos)) (lit += '$'), (this.pos += 3);
      else if (this.src.startsWith("''\\", this.pos)) (lit += this.src[this.pos + 3] ?? ''), (this.pos += 4);
      else if (this.src.startsWith("''", this.pos)) break;
      else if (this.src.startsWith('$${', this.pos)) (lit += '$${'), (this.pos += 3);
      else if (this.src.startsWith('${', this.pos)) {
        if (lit) parts.push(lit);
        lit = '';
        parts.push(this.interpolation());
      } else lit += this.src[this.pos++];
    }
    this.pos += 2;
    if (lit) parts.push(lit);
    return { k: 'str', v: "''", node: { t: 'str', parts }, at };
  }

  peek(): Tok {
    const p = this.pos;
    const t = this.lex();
    this.pos = p;
    return t;
  }
  next(): Tok {
    return this.lex();
  }
  isOp(v: string): boolean {
    const t = this.peek();
    return t.k === 'op' && t.v === v;
  }
  isKw(v: string): boolean {
    const t = this.peek();
    return t.k === 'id' && t.v === v;
  }
  expect(v: string): void {
    const t = this.next();
    if (!((t.k === 'op' || t.k === 'id') && t.v === v)) this.fail(`expected "${v}", found ${t.k === 'eof' ? 'end of file' : JSON.stringify(t.v)}`, t.at);
  }

  parse(): Node {
    const e = this.expr();
    const t = this.next();
    if (t.k !== 'eof') this.fail(`unexpected ${JSON.stringify(t.v)} after the expression`, t.at);
    return e;
  }

  expr(): Node {
    const t = this.peek();
    if (t.k === 'id' && t.v === 'let' && !this.isLegacyLet()) {
      this.next();
      const bindings = this.bindings('in');
      this.expect('in');
      return { t: 'let', bindings, body: this.expr() };
    }
    if (t.k === 'id' && (t.v === 'with' || t.v === 'assert')) {
      this.next();
      const e = this.expr();
      this.expect(';');
      return { t: t.v, e, body: this.expr() };
    }
    if (t.k === 'id' && t.v === 'if') {
      this.next();
      const c = this.expr();
      this.expect('then');
      const a = this.expr();
      this.expect('else');
      return { t: 'if', c, a, b: this.expr() };
    }
    const lambda = this.tryLambda();
    if (lambda) return lambda;
    return this.binary(0);
  }

  private isLegacyLet(): boolean {
    const p = this.pos;
    this.next();
    const r = this.isOp('{');
    this.pos = p;
    return r;
  }

  private tryLambda(): Node | null {
    const start = this.pos;
    const t = this.next();
    if (t.k === 'id' && !KEYWORDS.has(t.v)) {
      if (this.isOp(':')) {
        this.next();
        return { t: 'lambda', arg: t.v, formals: null, body: this.expr() };
      }
      if (this.isOp('@')) {
        this.next();
        const formals = this.formals();
        this.expect(':');
        return { t: 'lambda', arg: t.v, formals, body: this.expr() };
      }
    } else if (t.k === 'op' && t.v === '{') {
      this.pos = start;
      let formals: { names: string[]; ellipsis: boolean } | null = null;
      try {
        formals = this.formals();
      } catch (e) {
        if (!(e instanceof NixSyntaxError)) throw e;
      }
      if (formals && (this.isOp(':') || this.isOp('@'))) {
        let arg: string | null = null;
        if (this.isOp('@')) {
          this.next();
          const a = this.next();
          if (a.k !== 'id') this.fail('expected a name after @', a.at);
          arg = a.v;
        }
        this.expect(':');
        return { t: 'lambda', arg, formals, body: this.expr() };
      }
    }
    this.pos = start;
    return null;
  }

  private formals(): { names: string[]; ellipsis: boolean } {
    this.expect('{');
    const names: string[] = [];
    let ellipsis = false;
    while (!this.isOp('}')) {
      if (this.isOp('...')) {
        this.next();
        ellipsis = true;
      } else {
        const n = this.next();
        if (n.k !== 'id' || KEYWORDS.has(n.v)) this.fail('expected a formal argument', n.at);
        names.push(n.v);
        if (this.isOp('?')) {
          this.next();
          this.expr();
        }
      }
      if (this.isOp(',')) this.next();
      else break;
    }
    this.expect('}');
    return { names, ellipsis };
  }

  // precedence, lowest first: -> (right) · || · && · == != (none) · < > <= >= (none) · // (right) ·
  // ! (prefix) · + - · * / · ++ (right) · ? · unary - · application · select
  private static readonly LEVELS: { ops: string[]; assoc: 'left' | 'right' | 'none' }[] = [
    { ops: ['->'], assoc: 'right' },
    { ops: ['||'], assoc: 'left' },
    { ops: ['&&'], assoc: 'left' },
    { ops: ['==', '!='], assoc: 'none' },
    { ops: ['<', '>', '<=', '>='], assoc: 'none' },
    { ops: ['//'], assoc: 'right' },
    { ops: ['!'], assoc: 'none' }, // prefix, handled in binary()
    { ops: ['+', '-'], assoc: 'left' },
    { ops: ['*', '/'], assoc: 'left' },
    { ops: ['++'], assoc: 'right' },
  ];

  private binary(level: number): Node {
    const L = NixParser.LEVELS;
    if (level >= L.length) return this.hasAttr();
    if (L[level]!.ops[0] === '!') {
      if (this.isOp('!')) {
        this.next();
        return { t: 'unop', op: '!', e: this.binary(level) };
      }
      return this.binary(level + 1);
    }
    const { ops, assoc } = L[level]!;
    let l = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (t.k !== 'op' || !ops.includes(t.v)) return l;
      this.next();
      const r = assoc === 'right' ? this.binary(level) : this.binary(level + 1);
      l = { t: 'op', op: t.v, l, r };
      if (assoc === 'none') {
        const n = this.peek();
        if (n.k === 'op' && ops.includes(n.v)) this.fail(`"${n.v}" is not associative`, n.at);
        return l;
      }
    }
  }

  private hasAttr(): Node {
    let e = this.negation();
    while (this.isOp('?')) {
      this.next();
      e = { t: 'has', e, path: this.attrPath() };
    }
    return e;
  }

  private negation(): Node {
    if (this.isOp('-')) {
      this.next();
      return { t: 'unop', op: '-', e: this.negation() };
    }
    return this.application();
  }

  private startsOperand(t: Tok): boolean {
    if (t.k === 'id') return !KEYWORDS.has(t.v) || t.v === 'rec' || t.v === 'let';
    if (t.k === 'op') return ['(', '[', '{'].includes(t.v);
    return t.k !== 'eof';
  }

  private application(): Node {
    let f = this.select();
    while (this.startsOperand(this.peek()) && !this.isKw('or')) f = { t: 'app', f, arg: this.select() };
    return f;
  }

  private select(): Node {
    const e = this.primary();
    if (!this.isOp('.')) return e;
    this.next();
    const path = this.attrPath();
    if (this.isKw('or')) {
      this.next();
      return { t: 'select', e, path, or: this.select() };
    }
    return { t: 'select', e, path, or: null };
  }

  private attr(): Attr {
    const t = this.peek();
    if (t.k === 'id') return this.next().v;
    if (t.k === 'str') return this.next().node!;
    if (t.k === 'op' && t.v === '${') return this.interpolation();
    return this.fail(`expected an attribute name, found ${JSON.stringify(t.v)}`, t.at);
  }

  private attrPath(): Attr[] {
    const path = [this.attr()];
    while (this.isOp('.')) {
      this.next();
      path.push(this.attr());
    }
    return path;
  }

  private primary(): Node {
    const t = this.next();
    switch (t.k) {
      case 'id':
        if (t.v === 'rec') {
          this.expect('{');
          const bindings = this.bindings('}');
          this.expect('}');
          return { t: 'attrs', rec: true, bindings };
        }
        if (t.v === 'let') {
          this.expect('{');
          const bindings = this.bindings('}');
          this.expect('}');
          return { t: 'attrs', rec: true, bindings };
        }
        if (KEYWORDS.has(t.v)) this.fail(`unexpected keyword "${t.v}"`, t.at);
        return { t: 'id', name: t.v };
      case 'num':
      case 'path':
      case 'uri':
        return { t: t.k, text: t.v };
      case 'str':
        return t.node!;
      case 'op':
        if (t.v === '(') {
          const e = this.expr();
          this.expect(')');
          return e;
        }
        if (t.v === '[') {
          const items: Node[] = [];
          while (!this.isOp(']')) {
            if (this.peek().k === 'eof') this.fail('unterminated list', t.at);
            items.push(this.select());
          }
          this.next();
          return { t: 'list', items };
        }
        if (t.v === '{') {
          const bindings = this.bindings('}');
          this.expect('}');
          return { t: 'attrs', rec: false, bindings };
        }
        break;
      case 'eof':
        this.fail('unexpected end of file', t.at);
    }
    return this.fail(`unexpected ${JSON.stringify(t.v)}`, t.at);
  }

  private bindings(end: string): Binding[] {
    const out: Binding[] = [];
    for (;;) {
      const t = this.peek();
      if ((t.k === 'op' || t.k === 'id') && t.v === end) return out;
      if (t.k === 'eof') this.fail(`expected "${end}" before the end of file`, t.at);
      if (t.k === 'id' && t.v === 'inherit') {
        this.next();
        let from: Node | null = null;
        if (this.isOp('(')) {
          this.next();
          from = this.expr();
          this.expect(')');
        }
        const names: string[] = [];
        while (!this.isOp(';')) {
          const n = this.next();
          if (n.k !== 'id' && n.k !== 'str') this.fail('expected a name to inherit', n.at);
          names.push(n.v);
        }
        this.next();
        out.push({ inherit: names, from });
        continue;
      }
      const path = this.attrPath();
      this.expect('=');
      const value = this.expr();
      this.expect(';');
      out.push({ path, value });
    }
  }
}

export const parseNix = (src: string): Node => new NixParser(src).parse();

// ---- reading the tree ----------------------------------------------------------------------

const name = (a: Attr) => (typeof a === 'string' ? a : a.t === 'str' && a.parts.every((p) => typeof p === 'string') ? a.parts.join('') : '${…}');

/** Looks through let/with/lambda bodies and function applications (`mkIf c { … }`, `f (x: { … })`)
 *  to the attribute set they produce. */
export function attrsOf(n: Node): Extract<Node, { t: 'attrs' }> | null {
  switch (n.t) {
    case 'attrs':
      return n;
    case 'let':
    case 'with':
    case 'assert':
    case 'lambda':
      return attrsOf(n.body);
    case 'app':
      return attrsOf(n.arg) ?? attrsOf(n.f);
    default:
      return null;
  }
}

/** The value at `path` (dotted), following nested sets and `a.b.c = …` bindings alike. */
export function lookup(n: Node, path: string): Node | null {
  const want = path.split('.');
  const set = attrsOf(n);
  if (!set) return null;
  for (const b of set.bindings) {
    if (!('path' in b)) continue;
    const have = b.path.map(name);
    const k = Math.min(have.length, want.length);
    if (have.slice(0, k).join('.') !== want.slice(0, k).join('.')) continue;
    if (have.length === want.length) return b.value;
    if (have.length < want.length) {
      const r = lookup(b.value, want.slice(have.length).join('.'));
      if (r) return r;
    }
  }
  return null;
}

/** The names a set binds at its top level (first path components, and inherits). */
export const keysOf = (n: Node): string[] =>
  (attrsOf(n)?.bindings ?? []).flatMap((b) => ('path' in b ? [name(b.path[0]!)] : b.inherit));

/** A literal string list (`[ "a" "b" ]`), else null. */
export const stringList = (n: Node | null): string[] | null =>
  n?.t === 'list' && n.items.every((i) => i.t === 'str' && i.parts.every((p) => typeof p === 'string'))
    ? n.items.map((i) => (i as Extract<Node, { t: 'str' }>).parts.join(''))
    : null;
