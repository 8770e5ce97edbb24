//! The `$filter` subset of the Retail Prices API that clients send: `field eq 'value'`,
//! `contains(field, 'value')`, `and`, `or` and parentheses. Values compare case-sensitively, as
//! the real API does since `2023-01-01-preview`; field names do not.

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Filter {
    /// `field eq 'value'`.
    Eq(String, String),
    /// `contains(field, 'value')`.
    Contains(String, String),
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// Whether `field_value(name)` satisfies the filter; a missing field satisfies nothing.
    pub(super) fn matches(&self, field_value: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Filter::Eq(f, v) => field_value(f).is_some_and(|x| x == *v),
            Filter::Contains(f, v) => field_value(f).is_some_and(|x| x.contains(v.as_str())),
            Filter::And(a, b) => a.matches(field_value) && b.matches(field_value),
            Filter::Or(a, b) => a.matches(field_value) || b.matches(field_value),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string literal in {s:?}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(v));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                if i == start {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?} in $filter")),
        }
    }
    Ok(out)
}

/// Parses a `$filter` value.
pub(super) fn parse(s: &str) -> Result<Filter, String> {
    let tokens = tokenize(s)?;
    let mut p = Parser { tokens, pos: 0 };
    let f = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!(
            "unexpected {:?} after a complete $filter expression",
            p.tokens[p.pos]
        ));
    }
    Ok(f)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.term()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == *want => Ok(()),
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            other => Err(format!(
                "expected a quoted string value, found {other:?} (values are 'single-quoted')"
            )),
        }
    }

    fn term(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("contains") => {
                self.expect(&Token::Open)?;
                let field = match self.next() {
                    Some(Token::Ident(f)) => f,
                    other => return Err(format!("contains(): expected a field, found {other:?}")),
                };
                self.expect(&Token::Comma)?;
                let value = self.string()?;
                self.expect(&Token::Close)?;
                Ok(Filter::Contains(field, value))
            }
            Some(Token::Ident(field)) => {
                if !self.peek_keyword("eq") {
                    return Err(format!(
                        "after {field:?} the simulator supports only `eq` (and contains(), and, or)"
                    ));
                }
                self.pos += 1;
                Ok(Filter::Eq(field, self.string()?))
            }
            other => Err(format!("expected a condition, found {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(f: &str, fields: &[(&str, &str)]) -> bool {
        let filter = parse(f).unwrap();
        filter.matches(&|name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_string())
        })
    }

    #[test]
    fn eq_and_contains_and_parentheses() {
        let f = "serviceName eq 'Virtual Machines' and (armRegionName eq 'eastus' or armRegionName eq 'westus') and contains(skuName, 'Spot')";
        let row = [
            ("serviceName", "Virtual Machines"),
            ("armRegionName", "westus"),
            ("skuName", "D2s v3 Spot"),
        ];
        assert!(eval(f, &row));
        let lower = [
            ("serviceName", "virtual machines"),
            ("armRegionName", "westus"),
            ("skuName", "D2s v3 Spot"),
        ];
        assert!(!eval(f, &lower), "values are case-sensitive");
    }

    #[test]
    fn doubled_quotes_and_errors() {
        assert!(eval("a eq 'it''s'", &[("a", "it's")]));
        assert!(parse("a gt 'x'").is_err());
        assert!(parse("a eq 'x").is_err());
        assert!(parse("a eq 'x' and").is_err());
    }
}
