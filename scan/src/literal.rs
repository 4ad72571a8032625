//! Python literals, as `ast.literal_eval` reads them: enough to read an `.npy` header the way
//! `np.load` does (strings with every prefix and escape, implicit concatenation, comments,
//! duplicate dict keys where the last wins), so `'\x4f'` is read as `'O'`.
//!
//! Text the scanner cannot decode for certain (a `\N{...}` escape, a float) becomes
//! [`Lit::Unknown`], never a guess: callers treat it as "could be anything".

/// A parsed literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Bytes(Vec<u8>),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    /// Pairs in order, a repeated key already replaced by its last value.
    Dict(Vec<(Lit, Lit)>),
    /// A literal whose value the scanner does not compute (floats, complex, sets, `\N{}`).
    Unknown,
}

/// How deep brackets may nest before the parser gives up (CPython's own limit is near 200).
const MAX_DEPTH: usize = 64;

/// Parses `text` as one literal expression; `None` where `ast.literal_eval` raises (or where
/// the scanner cannot follow it, such as nesting past [`MAX_DEPTH`]). With `long_suffix`, an
/// `L` after an integer is dropped, as numpy does for headers written by Python 2.
pub(crate) fn parse(text: &str, long_suffix: bool) -> Option<Lit> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
        long_suffix,
        text,
    };
    // literal_eval strips leading spaces and tabs; the rest must be a single expression.
    while matches!(p.s.get(p.pos), Some(b' ' | b'\t')) {
        p.pos += 1;
    }
    let lit = p.expr()?;
    p.skip(false);
    p.skip_newlines();
    (p.pos == p.s.len()).then_some(lit)
}

struct Parser<'t> {
    s: &'t [u8],
    pos: usize,
    depth: usize,
    long_suffix: bool,
    text: &'t str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips blanks, comments and line continuations; inside brackets newlines too.
    fn skip(&mut self, newlines: bool) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\x0c') => self.pos += 1,
                Some(b'\r' | b'\n') if newlines => self.pos += 1,
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                        self.pos += 1;
                    }
                }
                Some(b'\\') if matches!(self.s.get(self.pos + 1), Some(b'\n' | b'\r')) => {
                    self.pos += 2;
                    if self.s.get(self.pos - 1) == Some(&b'\r') && self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn skip_newlines(&mut self) {
        loop {
            self.skip(false);
            match self.peek() {
                Some(b'\n' | b'\r') => self.pos += 1,
                _ => return,
            }
        }
    }

    fn eat(&mut self, byte: u8, newlines: bool) -> bool {
        self.skip(newlines);
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Lit> {
        let nested = self.depth > 0;
        self.skip(nested);
        match self.peek()? {
            b'{' => self.braces(),
            b'[' => self.sequence(b']').map(Lit::List),
            b'(' => self.paren(),
            b'-' | b'+' => {
                let negative = self.peek() == Some(b'-');
                self.pos += 1;
                match self.expr()? {
                    Lit::Int(n) if negative => Some(Lit::Int(n.checked_neg()?)),
                    Lit::Int(n) => Some(Lit::Int(n)),
                    Lit::Unknown => Some(Lit::Unknown),
                    _ => None,
                }
            }
            b'0'..=b'9' | b'.' => self.number(),
            b'\'' | b'"' => self.strings(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                let word = &self.s[start..self.pos];
                if matches!(self.peek(), Some(b'\'' | b'"')) && is_prefix(word) {
                    self.pos = start;
                    return self.strings();
                }
                match word {
                    b"None" => Some(Lit::None),
                    b"True" => Some(Lit::Bool(true)),
                    b"False" => Some(Lit::Bool(false)),
                    // `set()` is the one call literal_eval accepts.
                    b"set" if self.eat(b'(', true) && self.eat(b')', true) => Some(Lit::Unknown),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// `{...}`: a dict of `k: v` pairs, or a set (whose value never matters here).
    fn braces(&mut self) -> Option<Lit> {
        let close = b'}';
        self.pos += 1;
        self.enter()?;
        let mut pairs: Vec<(Lit, Lit)> = Vec::new();
        let mut is_dict = true;
        let mut first = true;
        loop {
            if self.eat(close, true) {
                break;
            }
            if !first && !self.eat(b',', true) {
                return None;
            }
            first = false;
            if self.eat(close, true) {
                break;
            }
            let key = self.expr()?;
            if self.eat(b':', true) {
                let value = self.expr()?;
                match pairs.iter_mut().find(|(k, _)| same_key(k, &key)) {
                    Some(pair) => pair.1 = value,
                    None => pairs.push((key, value)),
                }
            } else {
                is_dict = false;
                pairs.push((key, Lit::None));
            }
        }
        self.depth -= 1;
        Some(if is_dict {
            Lit::Dict(pairs)
        } else {
            Lit::Unknown
        })
    }

    fn sequence(&mut self, close: u8) -> Option<Vec<Lit>> {
        self.pos += 1;
        self.enter()?;
        let mut items = Vec::new();
        loop {
            if self.eat(close, true) {
                break;
            }
            if !items.is_empty() && !self.eat(b',', true) {
                return None;
            }
            if self.eat(close, true) {
                break;
            }
            items.push(self.expr()?);
        }
        self.depth -= 1;
        Some(items)
    }

    /// `(x)` is `x`; `()`, `(x,)` and `(x, y)` are tuples.
    fn paren(&mut self) -> Option<Lit> {
        self.pos += 1;
        self.enter()?;
        if self.eat(b')', true) {
            self.depth -= 1;
            return Some(Lit::Tuple(Vec::new()));
        }
        let first = self.expr()?;
        if self.eat(b')', true) {
            self.depth -= 1;
            return Some(first);
        }
        let mut items = vec![first];
        loop {
            if self.eat(b')', true) {
                break;
            }
            if !self.eat(b',', true) {
                return None;
            }
            if self.eat(b')', true) {
                break;
            }
            items.push(self.expr()?);
        }
        self.depth -= 1;
        Some(Lit::Tuple(items))
    }

    fn number(&mut self) -> Option<Lit> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            // An exponent's sign belongs to the number.
            if matches!(self.peek(), Some(b'e' | b'E'))
                && !self.s[start..self.pos].starts_with(b"0x")
                && !self.s[start..self.pos].starts_with(b"0X")
                && matches!(self.s.get(self.pos + 1), Some(b'+' | b'-'))
            {
                self.pos += 1;
            }
            self.pos += 1;
        }
        let mut token = &self.text[start..self.pos];
        if self.long_suffix {
            token = token
                .strip_suffix('L')
                .or_else(|| token.strip_suffix('l'))
                .unwrap_or(token);
        }
        let (digits, radix) = match token.get(..2) {
            Some("0x" | "0X") => (&token[2..], 16),
            Some("0o" | "0O") => (&token[2..], 8),
            Some("0b" | "0B") => (&token[2..], 2),
            _ => (token, 10),
        };
        let digits = digits
            .strip_prefix('_')
            .filter(|_| radix != 10)
            .unwrap_or(digits);
        let clean: String = digits.chars().filter(|&c| c != '_').collect();
        let valid_underscores = !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            && !clean.is_empty();
        if valid_underscores && clean.chars().all(|c| c.is_digit(radix)) {
            // Python 3 refuses leading zeros in a decimal int other than 0 itself.
            if radix == 10
                && clean.len() > 1
                && clean.starts_with('0')
                && clean.contains(|c| c != '0')
            {
                return None;
            }
            return i128::from_str_radix(&clean, radix)
                .ok()
                .map(Lit::Int)
                .or(Some(Lit::Unknown));
        }
        // Floats and complex numbers: their value never matters here.
        let float_like = radix == 10
            && token.chars().all(|c| {
                c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_' | 'j' | 'J')
            });
        float_like.then_some(Lit::Unknown)
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Option<Lit> {
        let mut text = String::new();
        let mut bytes = Vec::new();
        let mut kind: Option<bool> = None; // Some(true): bytes
        let mut unknown = false;
        loop {
            self.skip(self.depth > 0);
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.pos += 1;
            }
            let prefix = self.s[start..self.pos].to_ascii_lowercase();
            if !matches!(self.peek(), Some(b'\'' | b'"')) || !is_prefix(&prefix) {
                self.pos = start;
                break;
            }
            let is_bytes = prefix.contains(&b'b');
            let raw = prefix.contains(&b'r');
            if prefix.contains(&b'f') {
                return None; // an f-string is not a literal
            }
            if kind.is_some_and(|k| k != is_bytes) {
                return None; // str and bytes do not concatenate
            }
            kind = Some(is_bytes);
            let body = self.quoted_body()?;
            match decode(body, raw, is_bytes) {
                Decoded::Text(t) => text.push_str(&t),
                Decoded::Bytes(b) => bytes.extend_from_slice(&b),
                Decoded::Unknown => unknown = true,
                Decoded::Invalid => return None,
            }
        }
        let is_bytes = kind?;
        Some(match (unknown, is_bytes) {
            (true, _) => Lit::Unknown,
            (false, true) => Lit::Bytes(bytes),
            (false, false) => Lit::Str(text),
        })
    }

    /// The text between a string's quotes (single or triple), escapes left in.
    fn quoted_body(&mut self) -> Option<&str> {
        let quote = self.peek()?;
        let triple = self.s[self.pos..].starts_with(&[quote; 3]);
        let open = if triple { 3 } else { 1 };
        self.pos += open;
        let start = self.pos;
        loop {
            let c = self.peek()?;
            if c == b'\\' {
                self.pos += 2;
                continue;
            }
            if !triple && (c == b'\n' || c == b'\r') {
                return None;
            }
            if c == quote && (!triple || self.s[self.pos..].starts_with(&[quote; 3])) {
                let body = self.text.get(start..self.pos)?;
                self.pos += open;
                return Some(body);
            }
            self.pos += 1;
        }
    }
}

fn is_prefix(word: &[u8]) -> bool {
    let lower = word.to_ascii_lowercase();
    matches!(
        lower.as_slice(),
        b"" | b"u" | b"r" | b"b" | b"br" | b"rb" | b"f" | b"fr" | b"rf"
    )
}

fn same_key(a: &Lit, b: &Lit) -> bool {
    match (a, b) {
        (Lit::Unknown, _) | (_, Lit::Unknown) => false,
        // True == 1 as dict keys, but headers never mix them; compare as written.
        _ => a == b,
    }
}

enum Decoded {
    Text(String),
    Bytes(Vec<u8>),
    Unknown,
    Invalid,
}

/// Decodes a string body the way the tokenizer does.
fn decode(body: &str, raw: bool, is_bytes: bool) -> Decoded {
    if is_bytes && !body.is_ascii() {
        return Decoded::Invalid;
    }
    if raw {
        // A raw string cannot end in an odd backslash; quoted_body already paired them.
        return if is_bytes {
            Decoded::Bytes(body.as_bytes().to_vec())
        } else {
            Decoded::Text(body.to_string())
        };
    }
    let mut out: Vec<u32> = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c as u32);
            continue;
        }
        let Some(e) = chars.next() else {
            return Decoded::Invalid;
        };
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + chars.next()?.to_digit(16)?;
            }
            Some(v)
        };
        match e {
            '\n' => {}
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\\' | '\'' | '"' => out.push(e as u32),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(10),
            'r' => out.push(13),
            't' => out.push(9),
            'v' => out.push(11),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(v);
            }
            'x' => match hex(&mut chars, 2) {
                Some(v) => out.push(v),
                None => return Decoded::Invalid,
            },
            'u' if !is_bytes => match hex(&mut chars, 4) {
                Some(v) => out.push(v),
                None => return Decoded::Invalid,
            },
            'U' if !is_bytes => match hex(&mut chars, 8) {
                Some(v) if v <= 0x10ffff => out.push(v),
                _ => return Decoded::Invalid,
            },
            // A character by its Unicode name: the scanner has no name table.
            'N' if !is_bytes => return Decoded::Unknown,
            // Unknown escapes stay as written (with a warning in CPython).
            other => {
                out.push('\\' as u32);
                out.push(other as u32);
            }
        }
    }
    if is_bytes {
        match out.iter().map(|&v| u8::try_from(v).ok()).collect() {
            Some(bytes) => Decoded::Bytes(bytes),
            None => Decoded::Invalid,
        }
    } else {
        // Lone surrogates are valid in a Python str but not in a Rust one.
        match out.iter().map(|&v| char::from_u32(v)).collect() {
            Some(text) => Decoded::Text(text),
            None => Decoded::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Lit {
        Lit::Str(text.into())
    }

    #[test]
    fn reads_headers_as_literal_eval_does() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }          \n";
        assert_eq!(
            parse(header, false),
            Some(Lit::Dict(vec![
                (s("descr"), s("<f8")),
                (s("fortran_order"), Lit::Bool(false)),
                (s("shape"), Lit::Tuple(vec![Lit::Int(3), Lit::Int(4)])),
            ]))
        );
        assert_eq!(parse("'\\x4f'", false), Some(s("O")));
        assert_eq!(parse("u'\\u004f'", false), Some(s("O")));
        assert_eq!(parse("'\\117'", false), Some(s("O")));
        assert_eq!(parse("'|' 'O'", false), Some(s("|O")));
        assert_eq!(parse("R'\\x4f'", false), Some(s("\\x4f")));
        assert_eq!(parse("'''O'''", false), Some(s("O")));
        assert_eq!(parse("b'O'", false), Some(Lit::Bytes(b"O".to_vec())));
        assert_eq!(
            parse("'\\N{LATIN CAPITAL LETTER O}'", false),
            Some(Lit::Unknown)
        );
        assert_eq!(
            parse("{'a': 1, 'a': 2}", false),
            Some(Lit::Dict(vec![(s("a"), Lit::Int(2))]))
        );
        assert_eq!(parse("(1,)", false), Some(Lit::Tuple(vec![Lit::Int(1)])));
        assert_eq!(parse("(1)", false), Some(Lit::Int(1)));
        assert_eq!(parse("0x_1f", false), Some(Lit::Int(31)));
        assert_eq!(parse("1_000", false), Some(Lit::Int(1000)));
        assert_eq!(parse("-3", false), Some(Lit::Int(-3)));
        assert_eq!(parse("3L", true), Some(Lit::Int(3)));
        assert_eq!(parse("3L", false), None);
        assert_eq!(
            parse("{ # comment\n 'a': 1}", false),
            Some(Lit::Dict(vec![(s("a"), Lit::Int(1))]))
        );
        assert_eq!(parse("1.5e-3", false), Some(Lit::Unknown));
    }

    #[test]
    fn refuses_what_literal_eval_refuses() {
        for bad in [
            "",
            "f'x'",
            "'a' b'b'",
            "{'a': 1",
            "os.system",
            "(1 2)",
            "01",
            "'x\ny'",
            "[1,,]",
        ] {
            assert_eq!(parse(bad, false), None, "{bad:?}");
        }
        assert_eq!(parse(&"(".repeat(1000), false), None);
    }
}
