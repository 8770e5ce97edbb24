//! Just enough KQL for the Resource Graph `SpotResources` queries people send (FACTS.md §3):
//! a table, then `where` (`=~ == != !~ in~ in !in~ !in`, joined by `and`), `project` (paths,
//! `name = tostring(path)` / `todouble` / `toint` / `tolower`), and `order by` / `sort by`.
//! Anything else is an error the facade answers with 400, so an unsupported query fails loudly
//! instead of returning wrong data.

use serde_json::Value;

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Query {
    /// The table, e.g. `SpotResources`.
    pub table: String,
    /// Pipeline stages in order.
    pub stages: Vec<Stage>,
}

/// One `| ...` stage.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stage {
    /// `where a and b ...`.
    Where(Vec<Cond>),
    /// `project ...`.
    Project(Vec<Column>),
    /// `order by ...`: (column, descending).
    OrderBy(Vec<(String, bool)>),
}

/// A `where` condition.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Cond {
    path: Vec<PathPart>,
    op: Op,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    EqCi,
    Eq,
    Ne,
    NeCi,
    InCi,
    In,
    NotInCi,
    NotIn,
}

/// A projected column.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Column {
    name: String,
    func: Option<String>,
    path: Vec<PathPart>,
}

#[derive(Clone, Debug, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(usize),
    Str(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if word == "in" && c.get(i) == Some(&'~') {
                i += 1;
                out.push(Tok::Sym("in~"));
            } else if word == "in" {
                out.push(Tok::Sym("in"));
            } else {
                out.push(Tok::Ident(word));
            }
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            let n: String = c[start..i].iter().collect();
            out.push(Tok::Num(n.parse().map_err(|_| format!("bad number {n}"))?));
        } else if ch == '\'' || ch == '"' {
            let quote = ch;
            let mut v = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err("unterminated string literal".to_string()),
                    Some(&q) if q == quote => {
                        i += 1;
                        break;
                    }
                    Some('\\') if c.get(i + 1).is_some() => {
                        v.push(c[i + 1]);
                        i += 2;
                    }
                    Some(&x) => {
                        v.push(x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let four: String = c[i..(i + 4).min(c.len())].iter().collect();
            let sym = if four == "!in~" {
                i += 4;
                "!in~"
            } else if c[i..].iter().take(3).collect::<String>() == "!in" {
                i += 3;
                "!in"
            } else if let Some(s) = ["=~", "==", "!=", "!~"].into_iter().find(|s| *s == two) {
                i += 2;
                s
            } else {
                i += 1;
                match ch {
                    '|' => "|",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '.' => ".",
                    '[' => "[",
                    ']' => "]",
                    '=' => "=",
                    other => return Err(format!("unexpected character {other:?}")),
                }
            };
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

/// Parses a query.
pub(super) fn parse(s: &str) -> Result<Query, String> {
    let mut p = P {
        t: tokenize(s)?,
        i: 0,
    };
    let table = p.ident()?;
    let mut stages = Vec::new();
    while p.i < p.t.len() {
        p.sym("|")?;
        let op = p.ident()?;
        stages.push(match op.to_ascii_lowercase().as_str() {
            "where" => {
                let mut conds = vec![p.cond()?];
                while p.keyword("and") {
                    conds.push(p.cond()?);
                }
                Stage::Where(conds)
            }
            "project" => {
                let mut cols = vec![p.column()?];
                while p.eat_sym(",") {
                    cols.push(p.column()?);
                }
                Stage::Project(cols)
            }
            "order" | "sort" => {
                if !p.keyword("by") {
                    return Err(format!("expected `by` after `{op}`"));
                }
                let mut keys = Vec::new();
                loop {
                    let col = p.ident()?;
                    let desc = if p.keyword("desc") {
                        true
                    } else {
                        // KQL's default order is descending; `asc` says otherwise.
                        !p.keyword("asc")
                    };
                    keys.push((col, desc));
                    if !p.eat_sym(",") {
                        break;
                    }
                }
                Stage::OrderBy(keys)
            }
            other => {
                return Err(format!(
                    "the simulator's Resource Graph supports where, project and order by; not `{other}`"
                ));
            }
        });
    }
    Ok(Query { table, stages })
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn next(&mut self) -> Option<Tok> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(w)) => Ok(w),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }
    fn sym(&mut self, s: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(x)) if x == s => Ok(()),
            other => Err(format!("expected `{s}`, found {other:?}")),
        }
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.t.get(self.i), Some(Tok::Sym(x)) if *x == s) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.t.get(self.i), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn path(&mut self) -> Result<Vec<PathPart>, String> {
        let mut parts = vec![PathPart::Key(self.ident()?)];
        loop {
            if self.eat_sym(".") {
                parts.push(PathPart::Key(self.ident()?));
            } else if self.eat_sym("[") {
                match self.next() {
                    Some(Tok::Num(n)) => parts.push(PathPart::Index(n)),
                    other => return Err(format!("expected an index, found {other:?}")),
                }
                self.sym("]")?;
            } else {
                return Ok(parts);
            }
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(format!("expected a string literal, found {other:?}")),
        }
    }
    fn cond(&mut self) -> Result<Cond, String> {
        let path = self.path()?;
        let op = match self.next() {
            Some(Tok::Sym("=~")) => Op::EqCi,
            Some(Tok::Sym("==")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("!~")) => Op::NeCi,
            Some(Tok::Sym("in~")) => Op::InCi,
            Some(Tok::Sym("in")) => Op::In,
            Some(Tok::Sym("!in~")) => Op::NotInCi,
            Some(Tok::Sym("!in")) => Op::NotIn,
            other => return Err(format!("unsupported operator {other:?} in where")),
        };
        let values = if matches!(op, Op::InCi | Op::In | Op::NotInCi | Op::NotIn) {
            self.sym("(")?;
            let mut v = vec![self.string()?];
            while self.eat_sym(",") {
                v.push(self.string()?);
            }
            self.sym(")")?;
            v
        } else {
            vec![self.string()?]
        };
        Ok(Cond { path, op, values })
    }
    fn column(&mut self) -> Result<Column, String> {
        let first = self.path()?;
        if self.eat_sym("=") {
            let PathPart::Key(name) = &first[0] else {
                return Err("a column name cannot be indexed".into());
            };
            if first.len() != 1 {
                return Err("a column name cannot be a path".into());
            }
            let inner = self.path()?;
            if self.eat_sym("(") {
                let [PathPart::Key(func)] = inner.as_slice() else {
                    return Err("expected a function name".into());
                };
                let func = func.to_ascii_lowercase();
                if ![
                    "tostring", "todouble", "toreal", "toint", "tolong", "tolower",
                ]
                .contains(&func.as_str())
                {
                    return Err(format!("unsupported function {func}()"));
                }
                let path = self.path()?;
                self.sym(")")?;
                return Ok(Column {
                    name: name.clone(),
                    func: Some(func),
                    path,
                });
            }
            return Ok(Column {
                name: name.clone(),
                func: None,
                path: inner,
            });
        }
        let name = match first.last() {
            Some(PathPart::Key(k)) => k.clone(),
            _ => return Err("name an indexed column: `name = path[0]`".into()),
        };
        Ok(Column {
            name,
            func: None,
            path: first,
        })
    }
}

fn lookup<'a>(v: &'a Value, path: &[PathPart]) -> Option<&'a Value> {
    let mut cur = v;
    for part in path {
        cur = match part {
            // Resource Graph property names are case-insensitive.
            PathPart::Key(k) => cur
                .as_object()?
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)?,
            PathPart::Index(i) => cur.as_array()?.get(*i)?,
        };
    }
    Some(cur)
}

fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl Cond {
    fn holds(&self, row: &Value) -> bool {
        let have = as_text(lookup(row, &self.path));
        let ci = |v: &String| v.eq_ignore_ascii_case(&have);
        let cs = |v: &String| *v == have;
        match self.op {
            Op::EqCi | Op::InCi => self.values.iter().any(ci),
            Op::Eq | Op::In => self.values.iter().any(cs),
            Op::NeCi | Op::NotInCi => !self.values.iter().any(ci),
            Op::Ne | Op::NotIn => !self.values.iter().any(cs),
        }
    }
}

fn convert(func: Option<&str>, v: Option<&Value>) -> Value {
    match func {
        None => v.cloned().unwrap_or(Value::Null),
        Some("tostring") => match v {
            None | Some(Value::Null) => Value::String(String::new()),
            other => Value::String(as_text(other)),
        },
        Some("tolower") => Value::String(as_text(v).to_ascii_lowercase()),
        Some("todouble" | "toreal") => as_text(v)
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Some(_) => as_text(v).parse::<f64>().ok().map_or(Value::Null, |f| {
            #[allow(clippy::cast_possible_truncation)] // KQL toint truncates
            Value::from(f as i64)
        }),
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => as_text(Some(a)).cmp(&as_text(Some(b))),
    }
}

impl Query {
    /// Runs the pipeline over `rows`.
    pub(super) fn run(&self, rows: Vec<Value>) -> Vec<Value> {
        let mut rows = rows;
        for stage in &self.stages {
            match stage {
                Stage::Where(conds) => rows.retain(|r| conds.iter().all(|c| c.holds(r))),
                Stage::Project(cols) => {
                    rows = rows
                        .iter()
                        .map(|r| {
                            let mut o = serde_json::Map::new();
                            for c in cols {
                                o.insert(
                                    c.name.clone(),
                                    convert(c.func.as_deref(), lookup(r, &c.path)),
                                );
                            }
                            Value::Object(o)
                        })
                        .collect();
                }
                Stage::OrderBy(keys) => rows.sort_by(|a, b| {
                    for (col, desc) in keys {
                        let path = [PathPart::Key(col.clone())];
                        let null = Value::Null;
                        let x = lookup(a, &path).unwrap_or(&null);
                        let y = lookup(b, &path).unwrap_or(&null);
                        let o = compare(x, y);
                        let o = if *desc { o.reverse() } else { o };
                        if o.is_ne() {
                            return o;
                        }
                    }
                    std::cmp::Ordering::Equal
                }),
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_official_eviction_rate_query_parses_and_runs() {
        let q = parse(
            "SpotResources
| where type =~ 'microsoft.compute/skuspotevictionrate/location'
| where sku.name in~ ('standard_d2s_v4', 'standard_d4s_v4')
| where location in~ ('eastus', 'southcentralus')
| project skuName = tostring(sku.name), location, spotEvictionRate = tostring(properties.evictionRate)
| order by skuName asc, location asc",
        )
        .unwrap();
        assert_eq!(q.table, "SpotResources");
        let rows = vec![
            json!({"type": "microsoft.compute/skuspotevictionrate/location", "location": "southcentralus", "sku": {"name": "Standard_D2s_v4"}, "properties": {"evictionRate": "5-10"}}),
            json!({"type": "microsoft.compute/skuspotevictionrate/location", "location": "eastus", "sku": {"name": "Standard_D2s_v4"}, "properties": {"evictionRate": "0-5"}}),
            json!({"type": "microsoft.compute/skuspotevictionrate/location", "location": "westus", "sku": {"name": "Standard_D2s_v4"}, "properties": {"evictionRate": "0-5"}}),
            json!({"type": "microsoft.compute/skuspotevictionrate/location", "location": "eastus", "sku": {"name": "Standard_E2s_v4"}, "properties": {"evictionRate": "0-5"}}),
        ];
        let out = q.run(rows);
        assert_eq!(
            out,
            vec![
                json!({"skuName": "Standard_D2s_v4", "location": "eastus", "spotEvictionRate": "0-5"}),
                json!({"skuName": "Standard_D2s_v4", "location": "southcentralus", "spotEvictionRate": "5-10"}),
            ]
        );
    }

    #[test]
    fn the_official_price_history_query_parses_and_orders_by_price() {
        let q = parse(
            "SpotResources
| where type =~ 'microsoft.compute/skuspotpricehistory/ostype/location'
| where sku.name in~ ('standard_d2s_v4', 'standard_d4s_v4')
| where properties.osType =~ 'linux'
| where location in~ ('eastus', 'southcentralus')
| project skuName = tostring(sku.name), osType = tostring(properties.osType), location,
          latestSpotPriceUSD = todouble(properties.spotPrices[0].priceUSD)
| order by latestSpotPriceUSD asc",
        )
        .unwrap();
        let row = |size: &str, price: f64| json!({"type": "microsoft.compute/skuspotpricehistory/ostype/location", "location": "eastus", "sku": {"name": size}, "properties": {"osType": "Linux", "spotPrices": [{"priceUSD": price}, {"priceUSD": 9.0}]}});
        let out = q.run(vec![
            row("Standard_D4s_v4", 0.2),
            row("Standard_D2s_v4", 0.1),
        ]);
        assert_eq!(out[0]["skuName"], "Standard_D2s_v4");
        assert_eq!(out[0]["latestSpotPriceUSD"], json!(0.1));
        assert_eq!(out[1]["osType"], "Linux");
    }

    #[test]
    fn unsupported_queries_are_errors() {
        assert!(parse("SpotResources | summarize count()").is_err());
        assert!(parse("SpotResources | where a > 'b'").is_err());
        assert!(parse("SpotResources | project x = strcat(a)").is_err());
    }
}
