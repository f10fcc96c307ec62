//! Text a plugin hands the host (errors, log lines) is cut to a bound
//! before it reaches a log, a metric or a client.

/// Longest message kept from a plugin (an error it returns, a log line):
/// they reach logs and, under `reject`, clients' error headers.
pub const MAX_MESSAGE: usize = 4096;

/// Cuts `text` to at most `max` bytes, on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …(truncated)");
    }
    text
}
