//! URL path normalisation: `/users/123/orders/550e8400-…` → `/users/{id}/orders/{id}`.

/// The route of a path or full URL: the query string and fragment go, a
/// full URL (`scheme://host/...`) keeps only its path (`/` if it has none),
/// and every id-like segment (see [`is_id`]) becomes `placeholder`. Leading,
/// trailing and doubled slashes are kept as they are.
pub(crate) fn normalize(input: &str, placeholder: &str) -> String {
    let end = input.find(['?', '#']).unwrap_or(input.len());
    let mut path = &input[..end];
    if let Some(rest) = after_scheme(path) {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(segment) { placeholder } else { segment });
    }
    out
}

/// What follows `scheme://`, if `s` starts with a URL scheme.
fn after_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(rest)
}

/// Whether a path segment looks like an identifier rather than a word:
///
/// - only digits: `42`, `2024`;
/// - a UUID: `550e8400-e29b-41d4-a716-446655440000` (any case);
/// - 8 or more hex digits with at least one decimal digit: `5f2b9c1e`,
///   a SHA, a MongoDB ObjectId (`deadbeef`, all letters, stays);
/// - 8 or more letters, digits, `-` or `_` of which at least a third (and
///   at least two) are digits: `x7k2m9p4q1`, `user12345`, `2024-01-15`;
/// - 16 or more letters and digits with at least one digit (tokens).
///
/// So `users`, `v1`, `v2`, `api`, `oauth2`, `v1beta1`, `v1alpha1`,
/// `sha256`, `index.html` and `{id}` stay.
pub(crate) fn is_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == b.len() || is_uuid(b) {
        return true;
    }
    let len = b.len();
    (len >= 8 && digits >= 1 && b.iter().all(u8::is_ascii_hexdigit))
        || (len >= 8
            && digits >= 2
            && digits * 3 >= len
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_')))
        || (len >= 16 && digits >= 1 && b.iter().all(u8::is_ascii_alphanumeric))
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> String {
        normalize(path, "{id}")
    }

    #[test]
    fn numeric_ids_and_uuids_become_placeholders() {
        assert_eq!(
            n("/users/123/orders/550e8400-e29b-41d4-a716-446655440000"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(
            n("/orders/550E8400-E29B-41D4-A716-446655440000/lines/7"),
            "/orders/{id}/lines/{id}"
        );
    }

    #[test]
    fn a_full_url_keeps_only_its_path_without_query_or_fragment() {
        assert_eq!(
            n("https://shop.example/api/v1/items/42?x=1#f"),
            "/api/v1/items/{id}"
        );
        assert_eq!(n("http://user@host:8080/a/9"), "/a/{id}");
        assert_eq!(n("https://shop.example"), "/");
        assert_eq!(n("https://shop.example?q=1"), "/");
        assert_eq!(n("https://shop.example/#top"), "/");
        assert_eq!(n("/search?q=123"), "/search");
        assert_eq!(n("/docs#section-2"), "/docs");
    }

    #[test]
    fn a_scheme_later_in_the_path_is_just_text() {
        assert_eq!(n("/proxy/http://x/1"), "/proxy/http://x/{id}");
    }

    #[test]
    fn ordinary_words_and_versions_stay() {
        for path in [
            "/v2/health",
            "/api/v1/users",
            "/oauth2/token",
            "/apis/v1beta1/pods",
            "/apis/v1alpha1/x",
            "/sha256/sum",
            "/static/index.html",
            "/deadbeef",
            "/facade/cafebabe",
            "/users/{id}",
            "/iphone-15-pro-max",
            "/1.2.3",
            "/en-US/about",
        ] {
            assert_eq!(n(path), path, "{path}");
        }
    }

    #[test]
    fn hex_and_mixed_ids_become_placeholders() {
        assert_eq!(n("/commits/5f2b9c1e"), "/commits/{id}");
        assert_eq!(
            n("/blobs/da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            "/blobs/{id}"
        );
        assert_eq!(n("/obj/507f1f77bcf86cd799439011"), "/obj/{id}");
        assert_eq!(n("/t/a1b2c3d4e5"), "/t/{id}");
        assert_eq!(n("/t/x7k2m9p4q1"), "/t/{id}");
        assert_eq!(n("/u/user12345"), "/u/{id}");
        assert_eq!(n("/reports/2024-01-15"), "/reports/{id}");
        assert_eq!(n("/s/AbCdEfGh1jKlMnOpQr"), "/s/{id}");
    }

    #[test]
    fn slashes_are_kept_as_they_are() {
        assert_eq!(n("/"), "/");
        assert_eq!(n(""), "");
        assert_eq!(n("/users/123/"), "/users/{id}/");
        assert_eq!(n("users/123"), "users/{id}");
        assert_eq!(n("//a//42"), "//a//{id}");
    }

    #[test]
    fn the_placeholder_is_configurable() {
        assert_eq!(normalize("/users/7/cart", ":id"), "/users/:id/cart");
        assert_eq!(normalize("/users/7", "*"), "/users/*");
    }

    #[test]
    fn normalising_twice_changes_nothing_more() {
        let once = n("/users/123/orders/550e8400-e29b-41d4-a716-446655440000?a=b");
        assert_eq!(n(&once), once);
    }

    #[test]
    fn non_ascii_segments_stay() {
        assert_eq!(n("/ñandú/12"), "/ñandú/{id}");
    }
}
