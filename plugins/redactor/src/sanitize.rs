//! The URL query and SQL literal sanitizers. Both return `None` when the
//! value needs no change, so an unchanged value costs no allocation.

/// Replaces every query parameter's value with `mask`, keeping the
/// parameter names, the path and everything else.
///
/// - The query is what follows the first `?`, up to a `#`. A value with no
///   `?` and no `/` but with a `=` (`url.query` holds just the query:
///   `q=1&page=2`) is a query as a whole.
/// - A fragment that holds parameters (`#access_token=...&state=...`, as
///   OAuth's implicit flow returns them) is sanitized the same way; any other
///   fragment is kept.
/// - A parameter without `=` (`?debug`, `?4111111111111111`) is replaced
///   whole; empty values (`?a=&b`) stay empty. Names in `keep` keep their
///   value. Names are compared as written (percent-encoding included).
pub(crate) fn url(s: &str, mask: &str, keep: &dyn Fn(&str) -> bool) -> Option<String> {
    let b = s.as_bytes();
    let (question, hash) = match b.iter().position(|&c| c == b'?' || c == b'#') {
        None => {
            // No query and no fragment; maybe a bare query (`url.query`).
            if b.contains(&b'/') || !b.contains(&b'=') {
                return None;
            }
            (None, None)
        }
        Some(p) if b[p] == b'#' => (None, Some(p)),
        Some(p) => (
            Some(p),
            b[p..].iter().position(|&c| c == b'#').map(|h| p + h),
        ),
    };
    let (query_start, query_end) = match (question, hash) {
        (Some(q), _) => (q + 1, hash.unwrap_or(s.len())),
        (None, Some(h)) if !b[..h].contains(&b'/') && b[..h].contains(&b'=') => (0, h),
        (None, Some(h)) => {
            if !b[h..].contains(&b'=') {
                return None;
            }
            (h, h)
        }
        (None, None) => (0, s.len()),
    };
    let fragment = (query_end < s.len()).then(|| query_end + 1);
    let mut out = String::with_capacity(s.len() + 2 * mask.len());
    let mut changed = false;
    out.push_str(&s[..query_start]);
    changed |= params(&s[query_start..query_end], mask, keep, &mut out);
    if let Some(f) = fragment {
        out.push('#');
        let frag = &s[f..];
        if frag.contains('=') {
            changed |= params(frag, mask, keep, &mut out);
        } else {
            out.push_str(frag);
        }
    }
    changed.then_some(out)
}

fn params(q: &str, mask: &str, keep: &dyn Fn(&str) -> bool, out: &mut String) -> bool {
    let b = q.as_bytes();
    let mut changed = false;
    let mut start = 0;
    // `&`, `=` and the end are ASCII, so every slice below is on a char
    // boundary.
    while start <= b.len() {
        let end = b[start..]
            .iter()
            .position(|&c| c == b'&')
            .map_or(b.len(), |p| start + p);
        if start > 0 {
            out.push('&');
        }
        let param = &q[start..end];
        match param.bytes().position(|c| c == b'=') {
            Some(eq) => {
                let (name, value) = (&param[..eq], &param[eq + 1..]);
                out.push_str(name);
                out.push('=');
                if value.is_empty() || value == mask || keep(name) {
                    out.push_str(value);
                } else {
                    out.push_str(mask);
                    changed = true;
                }
            }
            None if param.is_empty() || param == mask || keep(param) => out.push_str(param),
            None => {
                out.push_str(mask);
                changed = true;
            }
        }
        start = end + 1;
    }
    changed
}

#[inline]
fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Replaces SQL literals with `?`, keeping keywords, identifiers, operators,
/// placeholders and comments, like the OpenTelemetry Collector's
/// `db.statement` sanitizer:
///
/// - string literals `'...'` (with `''` for a quote inside), with an
///   optional one-letter prefix (`N'..'`, `E'..'`, `X'..'`, `B'..'`), and
///   dollar-quoted strings (`$$...$$`, `$tag$...$tag$`); an unterminated
///   string is replaced to the end;
/// - numbers (`42`, `-` stays as an operator, `3.14`, `.5`, `1e-3`,
///   `0x1F`) that do not belong to an identifier (`t1`, `col_2` stay);
/// - `"quoted"` and `` `quoted` `` identifiers, `-- line` and `/* block */`
///   comments, and placeholders (`?`, `$1`, `:name`, `@p1`) are kept as they
///   are.
pub(crate) fn sql(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let n = b.len();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0; // bytes of `s` before this are in `out`
    let mut changed = false;
    let mut i = 0;
    let replace = |out: &mut String, copied: &mut usize, start: usize, end: usize| {
        out.push_str(&s[*copied..start]);
        out.push('?');
        *copied = end;
    };
    while i < n {
        let c = b[i];
        match c {
            b'\'' => {
                let end = quoted_end(b, i + 1, b'\'');
                replace(&mut out, &mut copied, i, end);
                changed = true;
                i = end;
            }
            b'"' | b'`' => i = quoted_end(b, i + 1, c),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..].iter().position(|&c| c == b'\n').map_or(n, |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(n, |p| p + 2);
            }
            b'$' => {
                // $1 placeholders stay; $tag$ ... $tag$ strings go.
                let tag_end = i
                    + 1
                    + b[i + 1..]
                        .iter()
                        .position(|&c| !(c.is_ascii_alphabetic() || c == b'_'))
                        .unwrap_or(n - i - 1);
                if b.get(tag_end) == Some(&b'$') && (i == 0 || !ident(b[i - 1])) {
                    let tag = &b[i..=tag_end];
                    let end = find(b, tag_end + 1, tag).map_or(n, |p| p + tag.len());
                    replace(&mut out, &mut copied, i, end);
                    changed = true;
                    i = end;
                } else {
                    i = tag_end.max(i + 1);
                    i += b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                }
            }
            b'0'..=b'9' | b'.'
                if (c != b'.' || b.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
                    && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b'.')) =>
            {
                let end = number_end(b, i);
                replace(&mut out, &mut copied, i, end);
                changed = true;
                i = end;
            }
            _ if ident(c) => {
                let start = i;
                i += b[i..].iter().take_while(|&&c| ident(c)).count();
                // A one-letter string prefix: N'..', E'..', X'..', B'..'.
                if i - start == 1
                    && matches!(c, b'N' | b'n' | b'E' | b'e' | b'X' | b'x' | b'B' | b'b')
                    && b.get(i) == Some(&b'\'')
                {
                    let end = quoted_end(b, i + 1, b'\'');
                    replace(&mut out, &mut copied, start, end);
                    changed = true;
                    i = end;
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&s[copied..]);
    Some(out)
}

/// The end (past the closing quote) of a quoted run whose body starts at
/// `i`; a doubled quote is a quote inside. Unterminated: the end of input.
fn quoted_end(b: &[u8], mut i: usize, quote: u8) -> usize {
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    let digits = |b: &[u8], i: usize| i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        return i
            + 2
            + b[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
    }
    i = digits(b, i);
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
            i = digits(b, j);
        }
    }
    i
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    (from..=hay.len().checked_sub(needle.len())?).find(|&p| hay[p..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> String {
        url(s, "****", &|_| false).unwrap_or_else(|| s.to_string())
    }

    fn q(s: &str) -> String {
        sql(s).unwrap_or_else(|| s.to_string())
    }

    #[test]
    fn url_query_values_are_masked_names_kept() {
        assert_eq!(
            u("https://shop.example.com/cart?token=abc&page=2"),
            "https://shop.example.com/cart?token=****&page=****"
        );
        assert_eq!(
            u("/search?q=hello%20world&lang=en#results"),
            "/search?q=****&lang=****#results"
        );
        assert_eq!(
            u("/cb#access_token=xyz&state=1"),
            "/cb#access_token=****&state=****"
        );
        assert_eq!(u("/p?a=1#frag=x"), "/p?a=****#frag=****");
        assert_eq!(u("q=OpenTelemetry&sort=asc"), "q=****&sort=****");
        assert_eq!(u("/x?%5Bkey%5D=v%26w&e=&flag"), "/x?%5Bkey%5D=****&e=&****");
        assert_eq!(u("/x?a=b=c"), "/x?a=****");
        assert_eq!(u("/x?"), "/x?");
        assert_eq!(u("/x?&&"), "/x?&&");
    }

    #[test]
    fn url_without_query_is_unchanged() {
        assert_eq!(url("https://example.com/a/b", "****", &|_| false), None);
        assert_eq!(
            url("https://example.com/a#section", "****", &|_| false),
            None
        );
        assert_eq!(url("/api/cart/123", "****", &|_| false), None);
        assert_eq!(url("", "****", &|_| false), None);
        // Already sanitized: no change, so no write.
        assert_eq!(url("/x?a=****&b=", "****", &|_| false), None);
    }

    #[test]
    fn url_kept_params() {
        let keep = |n: &str| n == "page";
        assert_eq!(
            url("/l?page=2&t=x", "****", &keep).unwrap(),
            "/l?page=2&t=****"
        );
        assert_eq!(url("/l?page=2", "****", &keep), None);
    }

    #[test]
    fn sql_literals() {
        assert_eq!(
            q("SELECT * FROM users WHERE email = 'a@b.com' AND id = 42"),
            "SELECT * FROM users WHERE email = ? AND id = ?"
        );
        assert_eq!(
            q("UPDATE t1 SET name = 'O''Brien', n = -3.5e2 WHERE x IN (1, 2,3)"),
            "UPDATE t1 SET name = ?, n = -? WHERE x IN (?, ?,?)"
        );
        assert_eq!(
            q("INSERT INTO t2 (c1, c_2) VALUES (N'x', X'FF', 0x1F, .5)"),
            "INSERT INTO t2 (c1, c_2) VALUES (?, ?, ?, ?)"
        );
        assert_eq!(
            q("SELECT $$it's$$, $q$a$q$, $1 FROM s.t3"),
            "SELECT ?, ?, $1 FROM s.t3"
        );
        assert_eq!(
            q("SELECT \"Col 1\", `c2` FROM \"t'x\" WHERE a = :name AND b = @p1 AND c = ?"),
            "SELECT \"Col 1\", `c2` FROM \"t'x\" WHERE a = :name AND b = @p1 AND c = ?"
        );
        assert_eq!(
            q("SELECT 1 -- it's a comment\nFROM t /* 'x' 2 */ LIMIT 10"),
            "SELECT ? -- it's a comment\nFROM t /* 'x' 2 */ LIMIT ?"
        );
        assert_eq!(q("SELECT 'unterminated"), "SELECT ?");
        assert_eq!(
            q("SELECT t.c1, table2.col FROM table2 t"),
            "SELECT t.c1, table2.col FROM table2 t"
        );
        assert_eq!(q("SELECT 'é', 'a' || 'b'"), "SELECT ?, ? || ?");
        assert_eq!(sql("SELECT a FROM b WHERE c = ?"), None);
        assert_eq!(sql("SELECT * FROM users"), None);
    }
}
