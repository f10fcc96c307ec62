//! What may run through the query API: exactly one read-only statement.
//!
//! This is the first of three fences, each enough on its own for the
//! common cases and together for the tricks:
//! 1. here, DuckDB's own parser decides: `json_serialize_sql` serialises
//!    only SELECT-shaped statements (SELECT, WITH, FROM-first, VALUES,
//!    DESCRIBE, SHOW, SUMMARIZE, set operations) and fails on every other
//!    kind, so COPY, EXPORT, ATTACH, PRAGMA, SET, CALL, INSTALL, LOAD and
//!    every DDL or DML statement are refused before anything is bound, and
//!    a request holding several statements is refused whole;
//! 2. the query runs inside `BEGIN TRANSACTION READ ONLY`, so a write that
//!    got past the parser (a table function with side effects) fails;
//! 3. the database runs with `enable_external_access = false` and a locked
//!    configuration (see `harden` in `sluice-store`), so no statement can read or
//!    write files outside the database, attach one, load an extension or
//!    change a setting.

use duckdb::Connection;

use super::QueryError;

/// What the guard decided to run: the statement, less an `EXPLAIN` prefix
/// when there was one (which is put back by the caller).
#[derive(Debug, PartialEq, Eq)]
pub struct Checked<'a> {
    pub explain: Option<&'a str>,
    pub body: &'a str,
}

/// Refuses anything but one read-only statement; `EXPLAIN [ANALYZE]` of one
/// is allowed too.
pub fn check<'a>(conn: &Connection, sql: &'a str) -> Result<Checked<'a>, QueryError> {
    let (explain, body) = split_explain(sql);
    if body.trim().trim_end_matches(';').trim().is_empty() {
        return Err(QueryError::Refused("the query is empty".into()));
    }
    let verdict: String = conn
        .query_row("SELECT json_serialize_sql(?::VARCHAR)", [body], |r| {
            r.get(0)
        })
        .map_err(|e| QueryError::Internal(format!("checking the statement: {e}")))?;
    let verdict: serde_json::Value = serde_json::from_str(&verdict)
        .map_err(|e| QueryError::Internal(format!("reading DuckDB's parse result: {e}")))?;
    if verdict["error"].as_bool() == Some(true) {
        let message = verdict["error_message"].as_str().unwrap_or("").to_string();
        let kind = verdict["error_type"].as_str().unwrap_or("");
        if kind.eq_ignore_ascii_case("parser") {
            // Let DuckDB say where: prepare gives the position and a caret.
            return Err(match conn.prepare(body) {
                Err(e) => QueryError::Sql(e.to_string()),
                Ok(_) => QueryError::Sql(message),
            });
        }
        let first = first_keyword(body);
        let reason = if QUERY_KEYWORDS.contains(&first.as_str()) {
            // The first statement is a query: what follows it is not.
            "send one read-only statement per request; this one holds another statement after \
             the query"
                .to_string()
        } else {
            format!("{first} statements are refused")
        };
        return Err(QueryError::Refused(format!(
            "only read-only queries may run (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, \
             SUMMARIZE, EXPLAIN); {reason}"
        )));
    }
    let statements = verdict["statements"].as_array().map_or(0, Vec::len);
    if statements != 1 {
        return Err(QueryError::Refused(format!(
            "send one statement per request; this one holds {statements}"
        )));
    }
    Ok(Checked { explain, body })
}

/// `EXPLAIN` and `EXPLAIN ANALYZE` are not SELECT statements to the
/// serialiser, but what they explain must be.
fn split_explain(sql: &str) -> (Option<&str>, &str) {
    let trimmed = sql.trim_start();
    let mut prefix_len = sql.len() - trimmed.len();
    let mut rest = trimmed;
    let mut found = false;
    for word in ["explain", "analyze"] {
        let Some(head) = rest.get(..word.len()) else {
            break;
        };
        let boundary = rest[word.len()..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace);
        if !head.eq_ignore_ascii_case(word) || !boundary || (word == "analyze" && !found) {
            break;
        }
        found = true;
        let after = &rest[word.len()..];
        let next = after.trim_start();
        prefix_len += word.len() + (after.len() - next.len());
        rest = next;
    }
    if found {
        (Some(&sql[..prefix_len]), rest)
    } else {
        (None, sql)
    }
}

/// How the statements the serialiser accepts begin.
const QUERY_KEYWORDS: &[&str] = &[
    "SELECT",
    "WITH",
    "FROM",
    "VALUES",
    "DESCRIBE",
    "SHOW",
    "SUMMARIZE",
    "TABLE",
    "such",
];

fn first_keyword(sql: &str) -> String {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if word.is_empty() {
        "such".into()
    } else {
        word.to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_prefixes_are_split_off() {
        assert_eq!(split_explain("SELECT 1"), (None, "SELECT 1"));
        assert_eq!(
            split_explain("  explain SELECT 1"),
            (Some("  explain "), "SELECT 1")
        );
        assert_eq!(
            split_explain("EXPLAIN ANALYZE\nSELECT 1"),
            (Some("EXPLAIN ANALYZE\n"), "SELECT 1")
        );
        assert_eq!(split_explain("explained"), (None, "explained"));
        assert_eq!(split_explain("analyze"), (None, "analyze"));
    }

    #[test]
    fn the_refusal_names_the_statement() {
        assert_eq!(first_keyword("  copy t TO 'x'"), "COPY");
        assert_eq!(first_keyword("(("), "such");
    }
}
