//! A query result as an aligned text table, the way `sluice query` prints it
//! on a terminal:
//!
//! ```text
//!  service  | spans | p95_ms
//! ----------+-------+--------
//!  checkout |     3 |  250.0
//! (1 row)
//! ```
//!
//! Numbers are right-aligned, NULL is shown as `NULL`, nested values as
//! compact JSON, and control characters are escaped so every row stays on
//! one line. Cells wider than `max_width` characters are cut with `…`.

use serde_json::Value;

/// One result as the JSON format of the query API carries it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ResultDoc {
    pub columns: Vec<ColumnDoc>,
    pub rows: Vec<Vec<Value>>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ColumnDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

fn is_numeric(type_name: &str) -> bool {
    let t = type_name.trim_start_matches('U');
    matches!(
        t,
        "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "FLOAT" | "DOUBLE"
    ) || type_name.starts_with("DECIMAL")
}

fn text(value: &Value) -> String {
    let raw = match value {
        Value::Null => return "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn cut(s: String, max_width: usize) -> String {
    if s.chars().count() <= max_width {
        s
    } else {
        let mut cut: String = s.chars().take(max_width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Renders `doc`; `max_width` bounds each cell (0: no bound).
pub fn render(doc: &ResultDoc, max_width: usize) -> String {
    let bound = if max_width == 0 {
        usize::MAX
    } else {
        max_width
    };
    let cells: Vec<Vec<String>> = doc
        .rows
        .iter()
        .map(|row| row.iter().map(|v| cut(text(v), bound)).collect())
        .collect();
    let mut widths: Vec<usize> = doc.columns.iter().map(|c| c.name.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = doc
        .columns
        .iter()
        .map(|c| is_numeric(&c.type_name))
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, values: &[String], right: &dyn Fn(usize) -> bool| {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pad = widths[i] - v.chars().count();
                if right(i) {
                    format!(" {}{v} ", " ".repeat(pad))
                } else {
                    format!(" {v}{} ", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(parts.join("|").trim_end());
        out.push('\n');
    };
    let names: Vec<String> = doc.columns.iter().map(|c| c.name.clone()).collect();
    line(&mut out, &names, &|_| false);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&rule.join("+"));
    out.push('\n');
    for row in &cells {
        line(&mut out, row, &|i| numeric[i]);
    }
    let n = doc.rows.len();
    out.push_str(&format!(
        "({n} row{}{})\n",
        if n == 1 { "" } else { "s" },
        if doc.truncated {
            "; truncated by the server's limits"
        } else {
            ""
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> ResultDoc {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_align_right_and_text_left() {
        let d = doc(
            r#"{"columns":[{"name":"service","type":"VARCHAR"},{"name":"n","type":"BIGINT"}],
                "rows":[["checkout",3],["cart",12345],[null,null]]}"#,
        );
        assert_eq!(
            render(&d, 0),
            " service  | n\n\
             ----------+-------\n \
             checkout |     3\n \
             cart     | 12345\n \
             NULL     |  NULL\n\
             (3 rows)\n"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_long_cells_cut() {
        let d = doc(r#"{"columns":[{"name":"body","type":"VARCHAR"}],
                "rows":[["line one\nline two"]], "truncated": true}"#);
        assert_eq!(
            render(&d, 9),
            " body\n-----------\n line one…\n(1 row; truncated by the server's limits)\n"
        );
        assert_eq!(text(&Value::String("a\tb\u{1}".into())), "a\\tb\\u{1}");
    }
}
