//! A reader for PostgreSQL's `pg_node_tree` text (what `nodeToString` writes and `pg_strtok`
//! reads back), and the one question `rls_initplan` asks of a policy's expression tree: which
//! function calls run once per row?
//!
//! Why the tree and not the deparsed SQL: the tree names functions by OID, so spelling, quoting,
//! casing, casts and `search_path` cannot hide or fake a call, and it records exactly where a
//! call sits. A call inside a sub-select that references nothing from outside it is planned as
//! an InitPlan and runs once per statement; a call anywhere else (including inside a correlated
//! sub-select, or in the left operand of `x IN (SELECT …)`) runs for every row.

/// A value in the tree: a node `{TAG :field value …}`, a list `( … )`, or a bare token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Node(Node),
    List(Vec<Value>),
    Atom(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) tag: String,
    /// Each field's items: usually one, several for `:constvalue 4 [ 1 0 0 0 ]`.
    pub(crate) fields: Vec<(String, Vec<Value>)>,
}

impl Node {
    pub(crate) fn field(&self, name: &str) -> Option<&[Value]> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
    fn int(&self, name: &str) -> Option<i64> {
        match self.field(name)?.first()? {
            Value::Atom(a) => a.parse().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    ListOpen,
    ListClose,
    /// The unescaped text, and whether it starts with an unescaped `:` (a field name).
    Word(String, bool),
}

/// Nesting beyond this is refused rather than risking the stack on a hostile catalog.
const MAX_DEPTH: usize = 2_000;

fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '}' | '(' | ')' => {
                chars.next();
                out.push(match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    '(' => Token::ListOpen,
                    _ => Token::ListClose,
                });
            }
            _ => {
                let field = c == ':';
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | '(' | ')') {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        if let Some(escaped) = chars.next() {
                            word.push(escaped);
                        }
                    } else {
                        word.push(c);
                    }
                }
                out.push(Token::Word(word, field));
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("expression tree nested too deeply".into());
        }
        match self.next() {
            Some(Token::Open) => self.node(depth + 1).map(Value::Node),
            Some(Token::ListOpen) => {
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(Token::ListClose) => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        None => return Err("unterminated list".into()),
                        _ => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(Token::Word(w, _)) => Ok(Value::Atom(w)),
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of tree".into()),
        }
    }

    fn node(&mut self, depth: usize) -> Result<Node, String> {
        let tag = match self.next() {
            Some(Token::Word(w, false)) => w,
            other => return Err(format!("expected a node tag, found {other:?}")),
        };
        let mut fields: Vec<(String, Vec<Value>)> = Vec::new();
        loop {
            match self.next() {
                Some(Token::Close) => return Ok(Node { tag, fields }),
                Some(Token::Word(name, true)) => {
                    // The first item always belongs to the field, whatever it looks like;
                    // further items do until the next field name or the end of the node.
                    let mut items = vec![self.value(depth)?];
                    while !matches!(self.peek(), Some(Token::Close) | Some(Token::Word(_, true)) | None) {
                        items.push(self.value(depth)?);
                    }
                    fields.push((name[1..].to_owned(), items));
                }
                other => return Err(format!("expected a field name in {tag}, found {other:?}")),
            }
        }
    }
}

pub(crate) fn parse(s: &str) -> Result<Value, String> {
    let mut p = Parser { tokens: tokenize(s), pos: 0 };
    let v = p.value(0)?;
    if p.pos < p.tokens.len() {
        return Err("trailing tokens after the expression".into());
    }
    Ok(v)
}

/// A function call found in an expression tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) funcid: i64,
    /// False when the call sits inside an uncorrelated sub-select (evaluated once).
    pub(crate) per_row: bool,
}

struct Walk {
    calls: Vec<(i64, Vec<usize>)>,
    /// For each sub-select met: does it reference nothing outside itself?
    self_contained: Vec<bool>,
}

/// Every function call in the tree and whether it is evaluated per row.
pub(crate) fn calls(tree: &Value) -> Vec<Call> {
    let mut w = Walk { calls: Vec::new(), self_contained: Vec::new() };
    let mut enclosing = Vec::new();
    walk(tree, 0, &mut enclosing, &mut w);
    w.calls
        .into_iter()
        .map(|(funcid, sublinks)| Call { funcid, per_row: !sublinks.iter().any(|&s| w.self_contained[s]) })
        .collect()
}

/// Returns the outermost query level referenced by a `VAR` below `v` (0 is the policy's own
/// table). `level` counts the `QUERY` nodes entered so far.
fn walk(v: &Value, level: usize, enclosing: &mut Vec<usize>, w: &mut Walk) -> Option<usize> {
    match v {
        Value::Atom(_) => None,
        Value::List(items) => items.iter().filter_map(|i| walk(i, level, enclosing, w)).min(),
        Value::Node(n) => match n.tag.as_str() {
            "VAR" => {
                let up = usize::try_from(n.int("varlevelsup").unwrap_or(0)).unwrap_or(0);
                Some(level.saturating_sub(up))
            }
            "SUBLINK" => {
                // The test expression (`x` in `x IN (SELECT …)`) is evaluated in the outer query.
                let mut min = fields_min(n, &["testexpr"], level, enclosing, w, true);
                let id = w.self_contained.len();
                w.self_contained.push(false);
                enclosing.push(id);
                let inner = fields_min(n, &["subselect"], level, enclosing, w, true);
                enclosing.pop();
                // The sub-select is at `level + 1`; referencing anything shallower correlates it.
                w.self_contained[id] = inner.is_none_or(|m| m > level);
                min = min_opt(min, inner);
                min
            }
            "QUERY" => fields_min(n, &[], level + 1, enclosing, w, false),
            "FUNCEXPR" => {
                if let Some(id) = n.int("funcid") {
                    w.calls.push((id, enclosing.clone()));
                }
                fields_min(n, &[], level, enclosing, w, false)
            }
            _ => fields_min(n, &[], level, enclosing, w, false),
        },
    }
}

/// Walks the named fields (`only`), or all fields when `only` is false.
fn fields_min(
    n: &Node,
    names: &[&str],
    level: usize,
    enclosing: &mut Vec<usize>,
    w: &mut Walk,
    only: bool,
) -> Option<usize> {
    let mut min = None;
    for (name, items) in &n.fields {
        if only && !names.contains(&name.as_str()) {
            continue;
        }
        for item in items {
            min = min_opt(min, walk(item, level, enclosing, w));
        }
    }
    min
}

fn min_opt(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
