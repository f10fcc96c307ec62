//! The built-in value detectors.
//!
//! [`candidates`] makes one cheap pass over a value's bytes (two table
//! lookups per byte, no branch on the byte) and returns which detectors
//! could possibly match: an `@` and a `.` for an email, 13 digits in groups
//! for a card number, a `J` and dots for a JWT, and so on. Only those
//! detectors' hand-written scanners run, so an ordinary value ("GET",
//! "/api/cart/123", "frontend") costs that one pass and nothing else. A value
//! with four digits or more gets a second table-driven pass that counts the
//! shapes the numeric detectors need. No detector uses a regex.
//!
//! Every match starts and ends on an ASCII byte, so on a char boundary.

/// A built-in detector. The order is the priority when matches of two
/// detectors overlap (secrets first): the merged region takes the action of
/// the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Detector {
    PrivateKey,
    Jwt,
    Bearer,
    BasicAuth,
    AwsKey,
    GcpKey,
    GithubToken,
    SlackToken,
    StripeKey,
    NpmToken,
    PypiToken,
    GitlabToken,
    AiApiKey,
    AzureStorageKey,
    SecretAssignment,
    CreditCard,
    Iban,
    UsSsn,
    Email,
    Phone,
    Ipv6,
    Ipv4,
}

/// Every detector, in priority order.
pub(crate) const ALL: [Detector; 22] = [
    Detector::PrivateKey,
    Detector::Jwt,
    Detector::Bearer,
    Detector::BasicAuth,
    Detector::AwsKey,
    Detector::GcpKey,
    Detector::GithubToken,
    Detector::SlackToken,
    Detector::StripeKey,
    Detector::NpmToken,
    Detector::PypiToken,
    Detector::GitlabToken,
    Detector::AiApiKey,
    Detector::AzureStorageKey,
    Detector::SecretAssignment,
    Detector::CreditCard,
    Detector::Iban,
    Detector::UsSsn,
    Detector::Email,
    Detector::Phone,
    Detector::Ipv6,
    Detector::Ipv4,
];

impl Detector {
    /// The name used in the config (`detectors`, `actions`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Detector::PrivateKey => "private_key",
            Detector::Jwt => "jwt",
            Detector::Bearer => "bearer",
            Detector::BasicAuth => "basic_auth",
            Detector::AwsKey => "aws_key",
            Detector::GcpKey => "gcp_key",
            Detector::GithubToken => "github_token",
            Detector::SlackToken => "slack_token",
            Detector::StripeKey => "stripe_key",
            Detector::NpmToken => "npm_token",
            Detector::PypiToken => "pypi_token",
            Detector::GitlabToken => "gitlab_token",
            Detector::AiApiKey => "ai_api_key",
            Detector::AzureStorageKey => "azure_storage_key",
            Detector::SecretAssignment => "secret_assignment",
            Detector::CreditCard => "credit_card",
            Detector::Iban => "iban",
            Detector::UsSsn => "us_ssn",
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::Ipv6 => "ipv6",
            Detector::Ipv4 => "ipv4",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|d| d.name() == name)
    }

    pub(crate) fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// One match: a byte range of the value and the rule that found it
/// (detectors are rules `0..ALL.len()`, custom patterns follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    pub rule: u16,
}

fn push(out: &mut Vec<Found>, d: Detector, start: usize, end: usize) {
    out.push(Found {
        start,
        end,
        rule: d as u16,
    });
}

#[inline]
fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}

/// Letters, digits and `_`: what makes a match part of a longer word.
#[inline]
fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[inline]
fn at(b: &[u8], i: usize, lit: &[u8]) -> bool {
    b.get(i..i + lit.len()) == Some(lit)
}

#[inline]
fn at_ignore_case(b: &[u8], i: usize, lower: &[u8]) -> bool {
    b.get(i..i + lower.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(lower))
}

/// Whether the byte before `i` is absent or satisfies `ok`.
#[inline]
fn before_is(b: &[u8], i: usize, ok: impl Fn(u8) -> bool) -> bool {
    i == 0 || ok(b[i - 1])
}

/// Whether the byte at `i` is absent or satisfies `ok`.
#[inline]
fn after_is(b: &[u8], i: usize, ok: impl Fn(u8) -> bool) -> bool {
    b.get(i).is_none_or(|&c| ok(c))
}

// What a byte tells the first pass (`candidates`).
const F_DIGIT: u32 = 1;
const F_UPPER: u32 = 1 << 1;
const F_DOT: u32 = 1 << 2;
const F_DASH: u32 = 1 << 3;
const F_COLON: u32 = 1 << 4;
const F_AT: u32 = 1 << 5;
const F_PLUS: u32 = 1 << 6;
const F_PAREN: u32 = 1 << 7;
const F_UNDERSCORE: u32 = 1 << 8;
const F_SPACE: u32 = 1 << 9;
const F_SLASH: u32 = 1 << 10;
const F_J: u32 = 1 << 11;
const F_X: u32 = 1 << 12;
const F_Y: u32 = 1 << 13;
const F_G: u32 = 1 << 14;
const F_B: u32 = 1 << 15;
const F_R: u32 = 1 << 16;
const F_S: u32 = 1 << 17;
const F_K: u32 = 1 << 18;
const F_Z: u32 = 1 << 19;
const F_I: u32 = 1 << 20;
const F_EQ: u32 = 1 << 21;
const F_P: u32 = 1 << 22;

/// Bytes some secret detector's gate needs (with a length).
const SECRET_TRIGGERS: u32 = F_DASH | F_J | F_B | F_I | F_Y | F_G | F_X | F_K;

const fn byte_flags() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'0'..=b'9' => F_DIGIT,
            b'J' => F_UPPER | F_J,
            b'I' => F_UPPER | F_I,
            b'B' => F_UPPER | F_B,
            b'R' => F_UPPER | F_R,
            b'S' => F_UPPER | F_S,
            b'A'..=b'Z' => F_UPPER,
            b'.' => F_DOT,
            b'-' => F_DASH,
            b':' => F_COLON,
            b'@' => F_AT,
            b'+' => F_PLUS,
            b'(' => F_PAREN,
            b'_' => F_UNDERSCORE,
            b' ' | b'\t' => F_SPACE,
            b'/' => F_SLASH,
            b'=' => F_EQ,
            b'p' => F_P,
            b'x' => F_X,
            b'y' => F_Y,
            b'g' => F_G,
            b'b' => F_B,
            b'r' => F_R,
            b's' => F_S,
            b'k' => F_K,
            b'z' => F_Z,
            _ => 0,
        };
        c += 1;
    }
    t
}

/// Per byte, one word for the first pass: its flags in bits 32-63, and what
/// it adds to three 10-bit counters below them: digits (bits 0-9), capital
/// letters (10-19), colons (20-29). The pass ORs the words for the flags
/// and adds them for the counts, one load per byte: adding flags only
/// carries upward, away from the counters, and a chunk of at most 1023
/// bytes cannot overflow one.
const fn byte_info() -> [u64; 256] {
    let flags = byte_flags();
    let mut t = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        let count = match c as u8 {
            b'0'..=b'9' => 1,
            b'A'..=b'Z' => 1 << 10,
            b':' => 1 << 20,
            _ => 0,
        };
        t[c] = ((flags[c] as u64) << 32) | count;
        c += 1;
    }
    t
}

static BYTE_INFO: [u64; 256] = byte_info();

// The second pass: a table-driven automaton over byte classes. Its state is the classes of the last two bytes and whether the
// byte before them was a capital; each step adds to eight 8-bit counters
// packed in a u64 (a chunk is at most 255 bytes, so none overflows).
// Colons need no state of their own here: they count as `C_OTHER`.
const C_OTHER: usize = 0;
const C_DIGIT: usize = 1;
const C_DASH: usize = 2;
const C_DOT: usize = 3;
const C_PAREN: usize = 4;
const C_UPPER: usize = 5;
const CLASSES: usize = 6;
const KEPT: usize = CLASSES;
const STATES: usize = 2 * KEPT * KEPT;

// Counter fields.
const PAIRS: u32 = 24; // a digit after a digit
const DDASH: u32 = 32; // digit, '-', digit
const DDOT: u32 = 40; // digit, '.', digit
const PAREN: u32 = 48; // '(' then a digit
const IBAN: u32 = 56; // two capitals then two digits

const fn byte_class(b: u8) -> usize {
    match b {
        b'0'..=b'9' => C_DIGIT,
        b'-' => C_DASH,
        b'.' => C_DOT,
        b'(' => C_PAREN,
        b'A'..=b'Z' => C_UPPER,
        _ => C_OTHER,
    }
}

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = byte_class(c as u8) as u8;
        c += 1;
    }
    t
}

static BYTE_CLASS: [u8; 256] = class_table();

/// For state `s` (= upper3 * 36 + p2 * 6 + p1) and class `c`: the counter
/// increments, and the next state.
const fn step_table() -> ([u64; STATES * CLASSES], [u8; STATES * CLASSES]) {
    let mut inc_t = [0u64; STATES * CLASSES];
    let mut next_t = [0u8; STATES * CLASSES];
    let mut s = 0;
    while s < STATES {
        let upper3 = s / (KEPT * KEPT) == 1;
        let p2 = (s / KEPT) % KEPT;
        let p1 = s % KEPT;
        let mut c = 0;
        while c < CLASSES {
            let mut inc = 0u64;
            if c == C_DIGIT {
                if p1 == C_DIGIT {
                    inc += 1 << PAIRS;
                    if p2 == C_UPPER && upper3 {
                        inc += 1 << IBAN;
                    }
                } else {
                    if p1 == C_DASH && p2 == C_DIGIT {
                        inc += 1 << DDASH;
                    }
                    if p1 == C_DOT && p2 == C_DIGIT {
                        inc += 1 << DDOT;
                    }
                    if p1 == C_PAREN {
                        inc += 1 << PAREN;
                    }
                }
            }
            let next = (p2 == C_UPPER) as usize * KEPT * KEPT + p1 * KEPT + c;
            inc_t[s * CLASSES + c] = inc;
            next_t[s * CLASSES + c] = next as u8;
            c += 1;
        }
        s += 1;
    }
    (inc_t, next_t)
}

static STEP: ([u64; STATES * CLASSES], [u8; STATES * CLASSES]) = step_table();

/// What the counting pass finds.
#[derive(Debug, Default)]
struct Shape {
    pairs: u32,
    ddash: u32,
    ddot: u32,
    paren: u32,
    iban: u32,
}

fn shape(b: &[u8]) -> Shape {
    let (inc_t, next_t) = &STEP;
    let mut sh = Shape::default();
    let mut state = 0usize;
    for chunk in b.chunks(255) {
        let mut acc = 0u64;
        for &c in chunk {
            let k = state * CLASSES + usize::from(BYTE_CLASS[usize::from(c)]);
            acc += inc_t[k];
            state = usize::from(next_t[k]);
        }
        let field = |shift: u32| ((acc >> shift) & 0xff) as u32;
        sh.pairs += field(PAIRS);
        sh.ddash += field(DDASH);
        sh.ddot += field(DDOT);
        sh.paren += field(PAREN);
        sh.iban += field(IBAN);
    }
    sh
}

/// The detectors that could match somewhere in `b`, as a bit set of
/// [`Detector::bit`]. Never rules out a real match (the scanners' tests
/// check that); may let through values the scanners then reject.
///
/// The first pass gathers which kinds of bytes occur and counts digits,
/// capitals and colons; only a value with enough digits gets the second
/// pass that counts adjacent digits, `d-d`, `d.d`, `(d` and "two capitals,
/// two digits".
pub(crate) fn candidates(b: &[u8]) -> u32 {
    let n = b.len();
    // First pass, for every value: which kinds of bytes occur, and three
    // counts (see `BYTE_INFO`).
    let (mut ored, mut digits, mut upper, mut colons) = (0u64, 0usize, 0usize, 0usize);
    for chunk in b.chunks(1023) {
        let mut sum = 0u64;
        for &c in chunk {
            let w = BYTE_INFO[usize::from(c)];
            ored |= w;
            sum = sum.wrapping_add(w);
        }
        digits += (sum & 0x3ff) as usize;
        upper += ((sum >> 10) & 0x3ff) as usize;
        colons += ((sum >> 20) & 0x3ff) as usize;
    }
    let f = (ored >> 32) as u32;
    let has = |flag: u32| f & flag != 0;
    // Without '@', '=', a colon or four digits, and short or without any
    // secret's trigger: nothing can match. (An npm token is the one secret
    // with no trigger of its own: it needs a `_` and 40 bytes, and a `p`
    // alone would let paths like "/api/cart" through.)
    if digits < 4
        && colons == 0
        && f & (F_AT | F_EQ) == 0
        && (n < 10 || (f & SECRET_TRIGGERS == 0 && upper < 4 && !(has(F_UNDERSCORE) && n >= 40)))
    {
        return 0;
    }
    let mut set = 0;
    let mut add = |d: Detector, cond: bool| {
        if cond {
            set |= d.bit();
        }
    };
    // Secrets: literal prefixes and lengths.
    add(Detector::PrivateKey, has(F_DASH) && upper >= 10 && n >= 27);
    add(Detector::Jwt, has(F_J) && has(F_DOT) && n >= 14);
    add(
        Detector::Bearer,
        has(F_B) && has(F_R) && has(F_SPACE) && n >= 15,
    );
    add(
        Detector::BasicAuth,
        (has(F_B) && has(F_S) && has(F_SPACE) && n >= 10)
            || (colons > 0 && has(F_SLASH) && has(F_AT)),
    );
    add(
        Detector::AwsKey,
        upper >= 4 && upper + digits >= 20 && n >= 20,
    );
    add(
        Detector::GcpKey,
        (has(F_I) && has(F_Z) && n >= 39) || (has(F_Y) && has(F_DOT) && digits >= 2 && n >= 25),
    );
    add(
        Detector::GithubToken,
        has(F_G) && has(F_UNDERSCORE) && n >= 33,
    );
    add(
        Detector::SlackToken,
        (has(F_X) && has(F_DASH) && n >= 15) || (has(F_K) && has(F_SLASH) && n >= 35),
    );
    add(
        Detector::StripeKey,
        has(F_K) && has(F_UNDERSCORE) && n >= 32,
    );
    add(Detector::NpmToken, has(F_P) && has(F_UNDERSCORE) && n >= 40);
    add(Detector::PypiToken, has(F_P) && has(F_DASH) && n >= 55);
    add(Detector::GitlabToken, has(F_G) && has(F_DASH) && n >= 25);
    add(Detector::AiApiKey, has(F_K) && has(F_DASH) && n >= 35);
    add(Detector::AzureStorageKey, has(F_EQ) && n >= 88);
    add(
        Detector::SecretAssignment,
        (has(F_EQ) || colons > 0) && n >= 3,
    );
    add(Detector::Email, has(F_AT) && has(F_DOT));
    add(Detector::Ipv6, colons >= 2);
    if digits < 4 && !(digits >= 2 && upper >= 2 && n >= 15) {
        return set;
    }
    // Second pass, only for values with digits: the numeric shapes.
    let sh = shape(b);
    add(Detector::CreditCard, digits >= 13 && sh.pairs >= 9);
    add(Detector::Iban, sh.iban > 0 && n >= 15);
    add(Detector::UsSsn, digits >= 9 && sh.ddash >= 2);
    add(
        Detector::Phone,
        (has(F_PLUS) && digits >= 8)
            || (digits >= 10 && sh.pairs >= 7 && (sh.ddash >= 2 || sh.ddot >= 2 || sh.paren > 0)),
    );
    add(Detector::Ipv4, sh.ddot >= 3);
    set
}

/// Runs one detector's scanner over `s`, appending its matches.
/// `secret_key` says whether a key written in the text names a credential
/// (the blocked-key rules; only [`Detector::SecretAssignment`] asks).
pub(crate) fn scan(d: Detector, s: &str, secret_key: &dyn Fn(&str) -> bool, out: &mut Vec<Found>) {
    let b = s.as_bytes();
    match d {
        Detector::PrivateKey => private_key(b, out),
        Detector::Jwt => jwt(b, out),
        Detector::Bearer => bearer(b, out),
        Detector::BasicAuth => basic_auth(b, out),
        Detector::AwsKey => aws_key(b, out),
        Detector::GcpKey => gcp_key(b, out),
        Detector::GithubToken => github_token(b, out),
        Detector::SlackToken => slack_token(b, out),
        Detector::StripeKey => stripe_key(b, out),
        Detector::NpmToken => npm_token(b, out),
        Detector::PypiToken => pypi_token(b, out),
        Detector::GitlabToken => gitlab_token(b, out),
        Detector::AiApiKey => ai_api_key(b, out),
        Detector::AzureStorageKey => azure_storage_key(b, out),
        Detector::SecretAssignment => secret_assignment(b, secret_key, out),
        Detector::CreditCard => credit_card(b, out),
        Detector::Iban => iban(b, out),
        Detector::UsSsn => us_ssn(b, out),
        Detector::Email => email(b, out),
        Detector::Phone => phone(b, out),
        Detector::Ipv6 => ipv6(b, out),
        Detector::Ipv4 => ipv4(b, out),
    }
}

// --- secrets --------------------------------------------------------------

/// `-----BEGIN ... PRIVATE KEY-----` through the matching `-----END ...-----`
/// (or the end of the value when the block is cut off).
fn private_key(b: &[u8], out: &mut Vec<Found>) {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut i = 0;
    while let Some(p) = find(b, i, BEGIN) {
        let label_start = p + BEGIN.len();
        let Some(label_end) = find(b, label_start, b"-----").filter(|&e| e - label_start <= 64)
        else {
            i = label_start;
            continue;
        };
        let label = &b[label_start..label_end];
        if find(label, 0, b"PRIVATE KEY").is_none() {
            i = label_end;
            continue;
        }
        let mut end_marker = Vec::with_capacity(label.len() + 14);
        end_marker.extend_from_slice(b"-----END ");
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(b"-----");
        let end = find(b, label_end + 5, &end_marker).map_or(b.len(), |e| e + end_marker.len());
        push(out, Detector::PrivateKey, p, end);
        i = end;
    }
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || from >= hay.len() {
        return None;
    }
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        match hay[i..].iter().position(|&c| c == first) {
            Some(off) => {
                let p = i + off;
                if at(hay, p, needle) {
                    return Some(p);
                }
                i = p + 1;
            }
            None => return None,
        }
    }
    None
}

/// The next position at or after `from` of byte `x` or `y`, eight bytes
/// at a time: `secret_assignment` looks for `=` and `:` in every value
/// with one, and most such values are URLs and times with nothing to find.
fn next2(b: &[u8], from: usize, x: u8, y: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (px, py) = (LO * u64::from(x), LO * u64::from(y));
    let mut i = from;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let w = u64::from_le_bytes(w);
        let (a, c) = (w ^ px, w ^ py);
        // A zero byte of `a` or `c` is a match; the lowest flagged byte is
        // always a true one (borrows only flag bytes above a match).
        let z = ((a.wrapping_sub(LO) & !a) | (c.wrapping_sub(LO) & !c)) & HI;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == x || c == y)
        .map(|p| i + p)
}

/// The next position at or after `from` holding a byte `ok` accepts.
#[inline]
fn next(b: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> Option<usize> {
    b.get(from..)?.iter().position(|&c| ok(c)).map(|p| from + p)
}

#[inline]
fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn run(b: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && ok(b[i]) {
        i += 1;
    }
    i
}

/// `eyJ...` header, `.`, payload, `.`, signature (may be empty), base64url;
/// also the five parts of a JWE.
fn jwt(b: &[u8], out: &mut Vec<Found>) {
    let mut i = 0;
    while let Some(p) = find(b, i, b"eyJ") {
        if !before_is(b, p, |c| !b64url(c) && c != b'.') {
            i = p + 1;
            continue;
        }
        let h_end = run(b, p, b64url);
        if h_end - p < 10 || b.get(h_end) != Some(&b'.') {
            i = h_end;
            continue;
        }
        let pl_end = run(b, h_end + 1, b64url);
        if pl_end - (h_end + 1) < 2 || b.get(pl_end) != Some(&b'.') {
            i = pl_end;
            continue;
        }
        let mut end = run(b, pl_end + 1, b64url);
        // JWE: two more parts.
        for _ in 0..2 {
            if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|&c| b64url(c)) {
                end = run(b, end + 1, b64url);
            } else {
                break;
            }
        }
        push(out, Detector::Jwt, p, end);
        i = end.max(p + 1);
    }
}

#[inline]
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// A credential rather than a word: at least 8 characters with a digit, a
/// symbol, or a capital letter after the first character. Keeps prose such
/// as "bearer authentication" out.
fn looks_like_credential(t: &[u8]) -> bool {
    t.len() >= 8
        && t.iter().enumerate().any(|(i, &c)| {
            c.is_ascii_digit() || !c.is_ascii_alphanumeric() || (i > 0 && c.is_ascii_uppercase())
        })
}

/// `Bearer <token>`, case-insensitive; the token is the match.
fn bearer(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'b' || c == b'B') {
        from = i + 1;
        if !(at_ignore_case(b, i, b"bearer") && before_is(b, i, |c| !word(c))) {
            continue;
        }
        let t = run(b, i + 6, |c| c == b' ' || c == b'\t');
        if t == i + 6 {
            continue;
        }
        let mut end = run(b, t, token_char);
        end = run(b, end, |c| c == b'=');
        if after_is(b, end, |c| !word(c)) && looks_like_credential(&b[t..end]) {
            push(out, Detector::Bearer, t, end);
        }
        from = end.max(i + 6);
    }
}

/// `Basic <base64 of user:password>` (the token is the match, and it must
/// decode to something with a `:`), and the password of a URL's userinfo
/// (`scheme://user:password@host`).
fn basic_auth(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'b' || c == b'B') {
        from = i + 1;
        if !(at_ignore_case(b, i, b"basic") && before_is(b, i, |c| !word(c))) {
            continue;
        }
        let t = run(b, i + 5, |c| c == b' ' || c == b'\t');
        if t == i + 5 {
            continue;
        }
        let mut end = run(b, t, |c| {
            c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
        });
        end = run(b, end, |c| c == b'=').min(end + 2);
        if end - t >= 4
            && after_is(b, end, |c| !word(c) && c != b'=' && c != b'+' && c != b'/')
            && base64_credential(&b[t..end])
        {
            push(out, Detector::BasicAuth, t, end);
        }
        from = end.max(i + 5);
    }
    let mut i = 0;
    while let Some(p) = find(b, i, b"://") {
        let a = p + 3;
        let e = run(b, a, |c| {
            !matches!(
                c,
                b'/' | b'?'
                    | b'#'
                    | b' '
                    | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b'\\'
            )
        });
        if let Some(at_sign) = b[a..e].iter().rposition(|&c| c == b'@') {
            let userinfo = &b[a..a + at_sign];
            if let Some(colon) = userinfo.iter().position(|&c| c == b':') {
                let (ps, pe) = (a + colon + 1, a + at_sign);
                if pe > ps {
                    push(out, Detector::BasicAuth, ps, pe);
                }
            }
        }
        i = e.max(a);
    }
}

fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Whether a padded standard base64 token decodes to `user:password`:
/// a multiple of four characters, no control bytes, a `:` inside. Encoders
/// always pad HTTP Basic credentials, and the checks keep words after
/// "basic" in prose out.
fn base64_credential(t: &[u8]) -> bool {
    if !t.len().is_multiple_of(4) {
        return false;
    }
    let body = match t.iter().position(|&c| c == b'=') {
        Some(p) => &t[..p],
        None => t,
    };
    let (mut acc, mut bits, mut colon) = (0u32, 0u32, false);
    for &c in body {
        let Some(v) = base64_value(c) else {
            return false;
        };
        acc = ((acc << 6) | v) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) & 0xff;
            if byte < 0x20 || byte == 0x7f {
                return false;
            }
            colon |= byte == u32::from(b':');
        }
    }
    colon
}

/// AWS access key ids: `AKIA`, `ASIA`, `ABIA` or `ACCA` and 16 capital
/// letters or digits.
fn aws_key(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'A') {
        from = i + 1;
        if i + 20 > b.len() {
            break;
        }
        let c = &b[i..i + 4];
        if (c == b"AKIA" || c == b"ASIA" || c == b"ABIA" || c == b"ACCA")
            && before_is(b, i, |c| !c.is_ascii_alphanumeric())
            && b[i + 4..i + 20]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && after_is(b, i + 20, |c| !c.is_ascii_alphanumeric())
        {
            push(out, Detector::AwsKey, i, i + 20);
            from = i + 20;
        }
    }
}

/// Google API keys (`AIza` and 35 more characters) and OAuth access tokens
/// (`ya29.` and at least 20 more).
fn gcp_key(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'A' || c == b'y') {
        from = i + 1;
        if at(b, i, b"AIza") && before_is(b, i, |c| !b64url(c)) {
            let end = run(b, i + 4, b64url);
            if end - (i + 4) == 35 {
                push(out, Detector::GcpKey, i, end);
            }
            from = end;
        } else if at(b, i, b"ya29.") && before_is(b, i, |c| !b64url(c) && c != b'.') {
            let mut end = run(b, i + 5, |c| b64url(c) || c == b'.');
            while end > i + 5 && b[end - 1] == b'.' {
                end -= 1;
            }
            if end - (i + 5) >= 20 {
                push(out, Detector::GcpKey, i, end);
            }
            from = end.max(i + 5);
        }
    }
}

/// `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and at least 36 letters or digits;
/// `github_pat_` and at least 22 of `[A-Za-z0-9_]`.
fn github_token(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'g') {
        from = i + 1;
        if i + 4 >= b.len() || !before_is(b, i, |c| !word(c)) {
            continue;
        }
        if at(b, i, b"gh")
            && matches!(b[i + 2], b'p' | b'o' | b'u' | b's' | b'r')
            && b[i + 3] == b'_'
        {
            let end = run(b, i + 4, |c| c.is_ascii_alphanumeric());
            if end - (i + 4) >= 36 && after_is(b, end, |c| !word(c)) {
                push(out, Detector::GithubToken, i, end);
            }
            from = end.max(i + 4);
        } else if at(b, i, b"github_pat_") {
            let end = run(b, i + 11, word);
            if end - (i + 11) >= 22 {
                push(out, Detector::GithubToken, i, end);
            }
            from = end;
        }
    }
}

/// Slack tokens: `xoxb-`, `xoxp-`, `xoxa-`, `xoxo-`, `xoxr-`, `xoxs-`,
/// `xoxe-` (refresh) and `xoxe.xoxb-`/`xoxe.xoxp-` (rotating) with at least
/// 10 more characters, and the secret path of an incoming-webhook URL
/// (`hooks.slack.com/services/...`).
fn slack_token(b: &[u8], out: &mut Vec<Found>) {
    const HOOK: &[u8] = b"hooks.slack.com/services/";
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'x' || c == b'h') {
        from = i + 1;
        if b[i] == b'x' {
            if !before_is(b, i, |c| !word(c)) {
                continue;
            }
            let prefix = if at(b, i, b"xoxe.xox")
                && matches!(b.get(i + 8), Some(b'b' | b'p'))
                && b.get(i + 9) == Some(&b'-')
            {
                10
            } else if at(b, i, b"xox")
                && matches!(
                    b.get(i + 3),
                    Some(b'a' | b'b' | b'p' | b'o' | b'r' | b's' | b'e')
                )
                && b.get(i + 4) == Some(&b'-')
            {
                5
            } else {
                continue;
            };
            let end = run(b, i + prefix, |c| c.is_ascii_alphanumeric() || c == b'-');
            let mut trimmed = end;
            while trimmed > i + prefix && b[trimmed - 1] == b'-' {
                trimmed -= 1;
            }
            if trimmed - (i + prefix) >= 10 {
                push(out, Detector::SlackToken, i, trimmed);
            }
            from = end.max(i + prefix);
        } else if at(b, i, HOOK) {
            let s = i + HOOK.len();
            let end = run(b, s, |c| {
                c.is_ascii_alphanumeric() || c == b'/' || c == b'_' || c == b'-'
            });
            if end - s >= 10 {
                push(out, Detector::SlackToken, s, end);
            }
            from = end;
        }
    }
}

/// The start of the run of `ok` bytes that ends at `end`, looking back at
/// most `max` bytes (a run longer than that gives `None`).
fn back_run(b: &[u8], end: usize, max: usize, ok: impl Fn(u8) -> bool) -> Option<usize> {
    let mut i = end;
    while i > 0 && ok(b[i - 1]) {
        if end - i == max {
            return None;
        }
        i -= 1;
    }
    Some(i)
}

/// Letters, digits and `_`, `-`: the alphabet of most vendor tokens.
#[inline]
fn token_body(c: u8) -> bool {
    b64url(c)
}

/// Whether a token body is random rather than a name: capitals, small
/// letters and digits all present. Slugs and pod names are lower case, so
/// this keeps `sk-worker-7d9c6b5f4-x2x9k`-like names out.
fn mixed(t: &[u8]) -> bool {
    let (mut up, mut low, mut dig) = (0, 0, 0);
    for &c in t {
        up += usize::from(c.is_ascii_uppercase());
        low += usize::from(c.is_ascii_lowercase());
        dig += usize::from(c.is_ascii_digit());
    }
    up >= 2 && low >= 2 && dig >= 2
}

/// Stripe secret and restricted keys: `sk_live_`, `sk_test_`, `rk_live_`,
/// `rk_test_` and at least 24 letters or digits. Publishable keys
/// (`pk_live_`) are meant to be public and are left alone.
fn stripe_key(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 2;
    while let Some(i) = next(b, from, |c| c == b'_') {
        from = i + 1;
        let s = i - 2;
        if !(matches!(&b[s..i], b"sk" | b"rk")
            && before_is(b, s, |c| !word(c))
            && (at(b, i + 1, b"live_") || at(b, i + 1, b"test_")))
        {
            continue;
        }
        let end = run(b, i + 6, |c| c.is_ascii_alphanumeric());
        if end - (i + 6) >= 24 && after_is(b, end, |c| !word(c)) {
            push(out, Detector::StripeKey, s, end);
        }
        from = end.max(from);
    }
}

/// npm access tokens: `npm_` and exactly 36 letters or digits.
fn npm_token(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 3;
    while let Some(i) = next(b, from, |c| c == b'_') {
        from = i + 1;
        let s = i - 3;
        if !(&b[s..i] == b"npm" && before_is(b, s, |c| !word(c))) {
            continue;
        }
        let end = run(b, i + 1, |c| c.is_ascii_alphanumeric());
        if end - (i + 1) == 36 && after_is(b, end, |c| !word(c)) {
            push(out, Detector::NpmToken, s, end);
        }
        from = end.max(from);
    }
}

/// PyPI upload tokens: `pypi-` and a macaroon, base64url that always starts
/// `Ag` (its version byte) and runs to 50 characters or more.
fn pypi_token(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 4;
    while let Some(i) = next(b, from, |c| c == b'-') {
        from = i + 1;
        let s = i - 4;
        if !(&b[s..i] == b"pypi" && before_is(b, s, |c| !word(c)) && at(b, i + 1, b"Ag")) {
            continue;
        }
        let end = run(b, i + 1, token_body);
        if end - (i + 1) >= 50 && after_is(b, end, |c| !b64url(c)) {
            push(out, Detector::PypiToken, s, end);
        }
        from = end.max(from);
    }
}

/// GitLab tokens: personal (`glpat-`), pipeline trigger (`glptt-`), deploy
/// (`gldt-`) and runner (`glrt-`), with at least 20 more characters
/// (the newer form has dotted parts: `glpat-<27>.01.<9>`).
fn gitlab_token(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(i) = next(b, from, |c| c == b'g') {
        from = i + 1;
        if !(b.get(i + 1) == Some(&b'l') && before_is(b, i, |c| !word(c) && c != b'-')) {
            continue;
        }
        let body = [&b"glpat-"[..], b"glptt-", b"gldt-", b"glrt-"]
            .into_iter()
            .find(|p| at(b, i, p))
            .map(|p| i + p.len());
        let Some(body) = body else { continue };
        let mut end = run(b, body, |c| token_body(c) || c == b'.');
        while end > body && b[end - 1] == b'.' {
            end -= 1;
        }
        if end - body >= 20 && after_is(b, end, |c| !b64url(c)) {
            push(out, Detector::GitlabToken, i, end);
        }
        from = end.max(from);
    }
}

/// OpenAI-style (`sk-…`, `sk-proj-…`, `sk-svcacct-…`) and Anthropic
/// (`sk-ant-api03-…`) API keys: `sk-` and at least 32 characters of
/// `[A-Za-z0-9_-]` with capitals, small letters and digits mixed (see
/// [`mixed`]), so names that happen to start with `sk-` stay.
fn ai_api_key(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 2;
    while let Some(i) = next(b, from, |c| c == b'-') {
        from = i + 1;
        let s = i - 2;
        if !(&b[s..i] == b"sk" && before_is(b, s, |c| !b64url(c) && c != b'.')) {
            continue;
        }
        let end = run(b, i + 1, token_body);
        let body = &b[i + 1..end];
        if body.len() >= 32 && after_is(b, end, |c| !b64url(c) && c != b'.') && mixed(body) {
            push(out, Detector::AiApiKey, s, end);
        }
        from = end.max(from);
    }
}

#[inline]
fn base64_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// Azure storage account keys: 64 random bytes in padded base64, 86
/// characters and `==`, standing alone (as after `AccountKey=` in a
/// connection string). Nothing else common is exactly that shape; the mixed
/// check keeps padded runs of one letter out.
fn azure_storage_key(b: &[u8], out: &mut Vec<Found>) {
    let mut from = 86;
    while let Some(i) = next(b, from, |c| c == b'=') {
        from = i + 1;
        if b.get(i + 1) != Some(&b'=') {
            continue;
        }
        from = i + 2;
        let Some(s) = back_run(b, i, 86, base64_char) else {
            continue;
        };
        if i - s == 86 && after_is(b, i + 2, |c| !base64_char(c) && c != b'=') && mixed(&b[s..i]) {
            push(out, Detector::AzureStorageKey, s, i + 2);
        }
    }
}

/// What a key written in free text is made of (`db.password`, `X-Api-Key`,
/// `AWS_SECRET_ACCESS_KEY`, `--password`).
#[inline]
fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Where an unquoted value stops. Passwords can hold most punctuation, but
/// these end a value in query strings, cookies, logfmt, JSON and prose.
#[inline]
fn value_stop(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'&' | b';'
                | b','
                | b'"'
                | b'\''
                | b'`'
                | b')'
                | b']'
                | b'}'
                | b'<'
                | b'>'
                | b'|'
                | b'\\'
        )
}

/// HTTP auth schemes: after `Authorization: Bearer` the credential is the
/// word after the scheme, and the scheme stays readable.
const AUTH_SCHEMES: [&[u8]; 6] = [
    b"bearer",
    b"basic",
    b"token",
    b"digest",
    b"negotiate",
    b"apikey",
];

/// Values that say there is no secret: booleans, nulls, what a redactor
/// (this one, Rails, Spring) leaves, and placeholders.
const NOT_SECRETS: [&[u8]; 22] = [
    b"true",
    b"false",
    b"null",
    b"nil",
    b"none",
    b"undefined",
    b"yes",
    b"no",
    b"on",
    b"off",
    b"enabled",
    b"disabled",
    b"redacted",
    b"masked",
    b"hidden",
    b"filtered",
    b"removed",
    b"omitted",
    b"sensitive",
    b"unset",
    b"n/a",
    b"empty",
];

/// Whether an assignment's value is no secret at all: empty, a boolean or
/// null, already masked (`****`, `xxxx`, `[REDACTED]`, `[FILTERED]`), or a
/// reference to one (`${DB_PASSWORD}`, `$TOKEN`, `{{ .token }}`, `%s`,
/// `<your-token>`). Masking those would hide no secret and make logs that
/// say "password=false" or "token=${TOKEN}" harder to read.
fn not_a_secret(v: &[u8]) -> bool {
    let n = v.len();
    if n >= 2 && v[0] == b'<' && v[n - 1] == b'>' {
        return true;
    }
    // Unquoted, `]` and `)` end a value, so `[REDACTED]` arrives open.
    let inner = v
        .strip_prefix(b"[")
        .or_else(|| v.strip_prefix(b"("))
        .unwrap_or(v);
    let inner = inner
        .strip_suffix(b"]")
        .or_else(|| inner.strip_suffix(b")"))
        .unwrap_or(inner);
    if inner
        .iter()
        .all(|&c| matches!(c, b'*' | b'x' | b'X' | b'#' | b'.' | b'-' | b'_'))
    {
        return true;
    }
    if NOT_SECRETS.iter().any(|w| inner.eq_ignore_ascii_case(w)) {
        return true;
    }
    if [&b"${"[..], b"$(", b"{{", b"%s", b"%(", b"%{", b"<%"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        return true;
    }
    n >= 2
        && v[0] == b'$'
        && v[1..]
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

/// A quote opening a value at `i`: `"` or `'`, or the same escaped with a
/// backslash (JSON inside a JSON string); the quote and its escaping.
fn open_quote(b: &[u8], i: usize) -> Option<(u8, bool)> {
    match b.get(i)? {
        &q @ (b'"' | b'\'') => Some((q, false)),
        b'\\' => match b.get(i + 1)? {
            &q @ (b'"' | b'\'') => Some((q, true)),
            _ => None,
        },
        _ => None,
    }
}

/// Where a quoted value that starts at `i` ends: the closing quote (with
/// the same escaping), skipping backslash escapes in an unescaped value.
fn close_quote(b: &[u8], mut i: usize, q: u8, escaped: bool) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'\\' if escaped => {
                if b.get(i + 1) == Some(&q) {
                    return Some(i);
                }
                i += 2;
            }
            b'\\' => i += 2,
            c if c == q && !escaped => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Secrets written as assignments in free text: `password=hunter2`,
/// `api_key: abc123`, `"client_secret": "..."`, `\"token\":\"...\"`,
/// `"password"=>"..."`, `AWS_SECRET_ACCESS_KEY=...`, `X-Api-Key: ...`,
/// `Authorization: Bearer ...`. The key decides: `secret_key` (the
/// blocked-key rules) must call it a credential. Only the value is the
/// match, so the key stays readable.
///
/// Left alone: values that are no secret ([`not_a_secret`]); comparisons
/// (`==`, `!=`, `<=`, `>=`); URL schemes (`https://`) and userinfo (the
/// `basic_auth` detector's); and, for a bare `key: value` (the form prose
/// uses, "password: required"), a value that is one lower-case word.
fn secret_assignment(b: &[u8], secret_key: &dyn Fn(&str) -> bool, out: &mut Vec<Found>) {
    let n = b.len();
    let mut from = 0;
    while let Some(p) = next2(b, from, b'=', b':') {
        from = p + 1;
        let prev = if p > 0 { b[p - 1] } else { 0 };
        let sep_end = if b[p] == b'=' {
            if matches!(prev, b'=' | b'!' | b'<' | b'>' | b':') {
                continue;
            }
            match b.get(p + 1) {
                Some(b'=') => continue,
                Some(b'>') => p + 2,
                _ => p + 1,
            }
        } else {
            match b.get(p + 1) {
                Some(b':' | b'/') => continue,
                Some(b'=') => p + 2,
                _ if prev == b':' => continue,
                _ => p + 1,
            }
        };
        // The key, back from the separator: spaces, a closing quote, the name.
        let mut ke = p;
        while ke > 0 && p - ke < 3 && matches!(b[ke - 1], b' ' | b'\t') {
            ke -= 1;
        }
        let quoted_key = ke > 0 && matches!(b[ke - 1], b'"' | b'\'');
        if quoted_key {
            ke -= 1;
            if ke > 0 && b[ke - 1] == b'\\' {
                ke -= 1;
            }
        }
        let Some(ks) = back_run(b, ke, 64, key_char) else {
            continue;
        };
        if ks == ke || !(b[ks].is_ascii_alphabetic() || b[ks] == b'_' || b[ks] == b'-') {
            continue;
        }
        // `scheme://user:password@host` is the basic_auth detector's.
        if ks >= 3 && &b[ks - 3..ks] == b"://" {
            continue;
        }
        // The value: spaces, an optional quote, an optional auth scheme.
        let mut vs = sep_end;
        while vs < n && vs - sep_end < 3 && matches!(b[vs], b' ' | b'\t') {
            vs += 1;
        }
        let spaced = vs > sep_end;
        let quote = open_quote(b, vs);
        let body = match quote {
            Some((_, escaped)) => vs + 1 + usize::from(escaped),
            None => vs,
        };
        let mut vs = body;
        let mut schemed = false;
        for s in AUTH_SCHEMES {
            if at_ignore_case(b, vs, s) && matches!(b.get(vs + s.len()), Some(b' ')) {
                vs = run(b, vs + s.len(), |c| c == b' ');
                schemed = true;
                break;
            }
        }
        let closed = quote.and_then(|(q, escaped)| close_quote(b, vs, q, escaped));
        let ve = match closed {
            Some(e) => e,
            None => {
                let mut e = run(b, vs, |c| !value_stop(c));
                while e > vs && b[e - 1] == b'.' {
                    e -= 1;
                }
                e
            }
        };
        if ve <= vs {
            continue;
        }
        let v = &b[vs..ve];
        if not_a_secret(v) {
            continue;
        }
        if b[p] == b':'
            && spaced
            && quote.is_none()
            && !quoted_key
            && !schemed
            && v.iter().all(|c| c.is_ascii_lowercase())
        {
            continue;
        }
        // Key bytes are ASCII, so always UTF-8.
        let key = std::str::from_utf8(&b[ks..ke]).unwrap_or_default();
        if secret_key(key) {
            push(out, Detector::SecretAssignment, vs, ve);
        }
    }
}

// --- numbers with checks --------------------------------------------------

/// Whether 13 to 19 digits start like a card of a real network (Visa,
/// Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir). This is
/// what keeps millisecond and nanosecond timestamps (which start with `1`)
/// out.
fn card_prefix_ok(d: &[u8]) -> bool {
    let len = d.len();
    if !(13..=19).contains(&len) {
        return false;
    }
    let p2 = u32::from(d[0]) * 10 + u32::from(d[1]);
    let p3 = p2 * 10 + u32::from(d[2]);
    let p4 = p3 * 10 + u32::from(d[3]);
    match d[0] {
        4 => true,
        5 => (50..=58).contains(&p2),
        2 => (2200..=2204).contains(&p4) || (2221..=2720).contains(&p4),
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || (300..=305).contains(&p3)
                || p2 == 36
                || p2 == 38
                || p2 == 39
                || (3528..=3589).contains(&p4)
        }
        6 => true,
        8 => p2 == 81,
        _ => false,
    }
}

/// The Luhn checksum, over digit values.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &v) in d.iter().rev().enumerate() {
        let v = u32::from(v);
        sum += if i % 2 == 1 {
            let x = v * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            v
        };
    }
    sum.is_multiple_of(10)
}

/// Whether these digit values are a plausible card number (prefix and Luhn).
pub(crate) fn is_card_number(d: &[u8]) -> bool {
    card_prefix_ok(d) && luhn(d)
}

/// Card numbers: 13 to 19 digits, contiguous or grouped by single spaces or
/// single dashes (one kind per number, groups of 3 to 6 digits), not inside a
/// word or a longer number, with a real network prefix and a valid Luhn
/// checksum. A long run of groups ("100 4111 1111 1111 1111") is searched for
/// a valid number inside it on group boundaries.
fn credit_card(b: &[u8], out: &mut Vec<Found>) {
    const MAX_GROUPS: usize = 16;
    let mut i = 0;
    while let Some(d0) = next(b, i, digit) {
        i = d0;
        let start = i;
        // First the run's extent, and whether it can hold a number: one
        // group of 13-19 digits, or consecutive groups of 3-6 digits with
        // 13 or more in all. Most runs cannot.
        let (mut j, mut stretch, mut possible) = (i, 0usize, false);
        loop {
            let gs = j;
            j = run(b, j, digit);
            let len = j - gs;
            if (3..=6).contains(&len) {
                stretch += len;
            } else {
                stretch = 0;
            }
            possible |= stretch >= 13 || (13..=19).contains(&len);
            match b.get(j) {
                Some(b' ' | b'-') if b.get(j + 1).is_some_and(|&c| digit(c)) => j += 1,
                _ => break,
            }
        }
        if !possible {
            i = j;
            continue;
        }
        let mut groups = [(0usize, 0usize); MAX_GROUPS];
        let mut count = 0;
        let mut sep: Option<u8> = None;
        let mut j = i;
        loop {
            let gs = j;
            j = run(b, j, digit);
            groups[count] = (gs, j);
            count += 1;
            if count == MAX_GROUPS {
                break;
            }
            match b.get(j) {
                Some(&c @ (b' ' | b'-'))
                    if sep.is_none_or(|s| s == c) && b.get(j + 1).is_some_and(|&c| digit(c)) =>
                {
                    sep = Some(c);
                    j += 1;
                }
                _ => break,
            }
        }
        let end = j;
        let ok_before = before_is(b, start, |c| !word(c) && c != b'.');
        let ok_after = after_is(b, end, |c| !word(c))
            && !(b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|&c| digit(c)));
        let mut g = 0;
        'starts: while g < count {
            for h in (g..count).rev() {
                if (g == 0 && !ok_before) || (h == count - 1 && !ok_after) {
                    continue;
                }
                let total: usize = groups[g..=h].iter().map(|(s, e)| e - s).sum();
                if !(13..=19).contains(&total) {
                    continue;
                }
                if h > g
                    && groups[g..=h]
                        .iter()
                        .any(|(s, e)| !(3..=6).contains(&(e - s)))
                {
                    continue;
                }
                let mut d = [0u8; 19];
                let mut k = 0;
                for &(s, e) in &groups[g..=h] {
                    for &c in &b[s..e] {
                        d[k] = c - b'0';
                        k += 1;
                    }
                }
                if is_card_number(&d[..k]) {
                    push(out, Detector::CreditCard, groups[g].0, groups[h].1);
                    g = h + 1;
                    continue 'starts;
                }
            }
            g += 1;
        }
        i = end.max(i + 1);
    }
}

/// The IBAN length of each country that uses one (SWIFT's IBAN registry).
fn iban_length(cc: [u8; 2]) -> Option<usize> {
    Some(match &cc {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" | b"SD" | b"FK" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" | b"MN" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// The ISO 13616 check: the first four characters moved to the end,
/// letters as 10 to 35, the number mod 97 must be 1.
pub(crate) fn iban_checksum_ok(chars: &[u8]) -> bool {
    let mut r = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        r = if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    r == 1
}

/// IBANs: a country code with a known IBAN length, two check digits, the
/// rest in capital letters and digits (electronic form, or the print form
/// with a space after every four characters), exactly that country's length,
/// and the mod-97 check.
fn iban(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut i = 0;
    while i + 15 <= n {
        if !(b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && digit(b[i + 2])
            && digit(b[i + 3])
            && before_is(b, i, |c| !word(c)))
        {
            i += 1;
            continue;
        }
        let Some(len) = iban_length([b[i], b[i + 1]]) else {
            i += 1;
            continue;
        };
        let mut chars = [0u8; 34];
        let mut k = 0;
        let mut j = i;
        while k < len && j < n {
            let c = b[j];
            if c.is_ascii_uppercase() || digit(c) {
                chars[k] = c;
                k += 1;
                j += 1;
            } else if c == b' '
                && k % 4 == 0
                && b.get(j + 1)
                    .is_some_and(|&c| c.is_ascii_uppercase() || digit(c))
            {
                j += 1;
            } else {
                break;
            }
        }
        if k == len && after_is(b, j, |c| !word(c)) && iban_checksum_ok(&chars[..k]) {
            push(out, Detector::Iban, i, j);
            i = j;
        } else {
            i += 1;
        }
    }
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'))
}

/// US social security numbers written `ddd-dd-dddd`, not inside a longer
/// dashed or alphanumeric token, without the never-issued area numbers 000,
/// 666 and 900-999, group 00 or serial 0000. Undashed nine-digit runs are not
/// matched (too many ordinary numbers have nine digits).
fn us_ssn(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut i = 0;
    while i + 11 <= n {
        let s = &b[i..i + 11];
        if s[3] == b'-'
            && s[6] == b'-'
            && s[..3].iter().all(|&c| digit(c))
            && s[4..6].iter().all(|&c| digit(c))
            && s[7..].iter().all(|&c| digit(c))
            && before_is(b, i, |c| !word(c) && c != b'-')
            && after_is(b, i + 11, |c| !word(c) && c != b'-')
        {
            let (area, group, serial) = (num(&s[..3]), num(&s[4..6]), num(&s[7..]));
            if area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 {
                push(out, Detector::UsSsn, i, i + 11);
                i += 11;
                continue;
            }
        }
        i += 1;
    }
}

// --- personal data ---------------------------------------------------------

#[inline]
fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

#[inline]
fn domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn valid_domain(d: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in d.split(|&c| c == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(|c| c.is_ascii_alphabetic())
}

/// Whether position `l` is inside a URL's userinfo (`scheme://` with no `/`,
/// `@` or space since): then `name@host` is a login, not an email address.
fn in_url_userinfo(b: &[u8], l: usize) -> bool {
    let mut j = l;
    while j > 0 {
        match b[j - 1] {
            b'/' => return j >= 3 && b[j - 2] == b'/' && b[j - 3] == b':',
            b'@' => return false,
            c if c.is_ascii_whitespace() => return false,
            _ => j -= 1,
        }
    }
    false
}

/// Email addresses: a local part of `[A-Za-z0-9._%+-]`, `@`, and a domain of
/// at least two labels whose last is two or more letters (so `pkg@1.2.3`
/// and `@types/node` are not addresses).
fn email(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut from = 0;
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'@') {
        let a = i + off;
        i = a + 1;
        if a < from {
            continue;
        }
        let mut l = a;
        while l > from && local_char(b[l - 1]) {
            l -= 1;
        }
        while l < a && b[l] == b'.' {
            l += 1;
        }
        if l == a || b[a - 1] == b'.' {
            continue;
        }
        let mut r = run(b, a + 1, domain_char);
        while r > a + 1 && (b[r - 1] == b'.' || b[r - 1] == b'-') {
            r -= 1;
        }
        if !valid_domain(&b[a + 1..r]) || in_url_userinfo(b, l) {
            continue;
        }
        push(out, Detector::Email, l, r);
        from = r;
        i = r;
        if i >= n {
            break;
        }
    }
}

#[inline]
fn phone_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Phone numbers in a plausible written form only, so that ordinary digit
/// runs (ids, timestamps) never match:
/// - international: `+`, a country code not starting with 0, and 8 to 15
///   digits in all, optionally grouped by spaces, dashes, dots or
///   parentheses (`+44 20 7946 0958`, `+1 (555) 010-9999`, `+4915112345678`);
/// - North American: `(ddd) ddd-dddd`, `(ddd)ddd-dddd`, `(ddd) ddd dddd`,
///   `ddd-ddd-dddd` or `ddd.ddd.dddd`, optionally after `1-`/`1 `/`1.`,
///   area code and exchange starting with 2-9. The parenthesized forms
///   need no boundary before them but a non-digit.
fn phone(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if c == b'+'
            && before_is(b, i, |c| !word(c) && c != b'+')
            && b.get(i + 1).is_some_and(|c| (b'1'..=b'9').contains(c))
        {
            let (mut j, mut digits, mut last_digit, mut seps) = (i + 1, 0, i + 1, 0);
            while j < n {
                let c = b[j];
                if digit(c) {
                    digits += 1;
                    last_digit = j + 1;
                    seps = 0;
                } else if phone_sep(c) && seps < 2 {
                    seps += 1;
                } else {
                    break;
                }
                j += 1;
            }
            if (8..=15).contains(&digits) && after_is(b, last_digit, |c| !word(c)) {
                push(out, Detector::Phone, i, last_digit);
                i = last_digit;
                continue;
            }
            i = j.max(i + 1);
            continue;
        }
        // "(415) 555-2671" needs only no digit before it; "415-555-2671"
        // must not continue a word or a number.
        if ((c == b'(' && before_is(b, i, |c| !digit(c)))
            || (digit(c) && before_is(b, i, |c| !word(c) && !matches!(c, b'-' | b'.' | b'+'))))
            && let Some(end) = nanp(b, i)
        {
            push(out, Detector::Phone, i, end);
            i = end;
            continue;
        }
        i += 1;
    }
}

fn digits_at(b: &[u8], i: usize, len: usize) -> bool {
    b.get(i..i + len)
        .is_some_and(|s| s.iter().all(|&c| digit(c)))
}

/// A North American number starting at `i`; its end.
fn nanp(b: &[u8], i: usize) -> Option<usize> {
    // Optional leading trunk code: "1-", "1 " or "1." before the number.
    if b[i] == b'1'
        && matches!(b.get(i + 1), Some(b'-' | b' ' | b'.'))
        && b.get(i + 2).is_some_and(|&c| c == b'(' || digit(c))
        && let Some(end) = nanp_body(b, i + 2)
    {
        return Some(end);
    }
    nanp_body(b, i)
}

fn nanp_body(b: &[u8], i: usize) -> Option<usize> {
    let ok_first = |c: u8| (b'2'..=b'9').contains(&c);
    let end = if b[i] == b'(' {
        // (ddd) ddd-dddd, (ddd)ddd-dddd, (ddd) ddd dddd, (ddd) ddd.dddd
        if !(digits_at(b, i + 1, 3) && b.get(i + 4) == Some(&b')') && ok_first(b[i + 1])) {
            return None;
        }
        let mut j = i + 5;
        if b.get(j) == Some(&b' ') {
            j += 1;
        }
        if !(digits_at(b, j, 3)
            && ok_first(b[j])
            && matches!(b.get(j + 3), Some(b'-' | b' ' | b'.'))
            && digits_at(b, j + 4, 4))
        {
            return None;
        }
        j + 8
    } else {
        // ddd-ddd-dddd or ddd.ddd.dddd (the same separator twice)
        if !(digits_at(b, i, 3) && ok_first(b[i])) {
            return None;
        }
        let sep = *b.get(i + 3)?;
        if !(matches!(sep, b'-' | b'.')
            && digits_at(b, i + 4, 3)
            && ok_first(b[i + 4])
            && b.get(i + 7) == Some(&sep)
            && digits_at(b, i + 8, 4))
        {
            return None;
        }
        i + 12
    };
    let clean_end = after_is(b, end, |c| !word(c))
        && !(matches!(b.get(end), Some(b'-' | b'.')) && b.get(end + 1).is_some_and(|&c| digit(c)));
    clean_end.then_some(end)
}

/// A dotted quad at `i`: four octets 0-255 without leading zeros; its end.
fn parse_ipv4(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for k in 0..4 {
        if k > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let s = j;
        while j < b.len() && digit(b[j]) && j - s < 3 {
            j += 1;
        }
        let len = j - s;
        if len == 0 || (len > 1 && b[s] == b'0') || num(&b[s..j]) > 255 {
            return None;
        }
        if j < b.len() && digit(b[j]) {
            return None;
        }
    }
    Some(j)
}

/// IPv4 addresses: exactly four dotted octets 0-255 (no leading zeros), not
/// inside a word or a longer dotted number, so `1.2.3` and `1.2.3.4.5` and
/// `v1.2.3.4` do not match.
fn ipv4(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !digit(b[i]) {
            i += 1;
            continue;
        }
        let dotted_end = run(b, i, |c| digit(c) || c == b'.');
        if before_is(b, i, |c| !word(c) && c != b'.')
            && let Some(end) = parse_ipv4(b, i)
            && after_is(b, end, |c| !word(c))
            && !(b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|&c| digit(c)))
        {
            push(out, Detector::Ipv4, i, end);
            i = end;
            continue;
        }
        i = dotted_end.max(i + 1);
    }
}

#[inline]
fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Whether `c` is a whole IPv6 address: hex groups of 1-4, at most one `::`,
/// an optional dotted IPv4 tail, eight groups in all (fewer with `::`, but at
/// least two, or exactly `::1`).
pub(crate) fn valid_ipv6(c: &[u8]) -> bool {
    if c.iter().filter(|&&x| x == b':').count() < 2 {
        return false;
    }
    if c == b"::1" {
        return true;
    }
    let (head, tail, compressed) = match find(c, 0, b"::") {
        Some(p) => {
            let tail = &c[p + 2..];
            if find(tail, 0, b"::").is_some() || (p > 0 && c[p - 1] == b':') {
                return false;
            }
            (&c[..p], tail, true)
        }
        None => (c, &c[..0], false),
    };
    let mut groups = 0usize;
    let parts = [head, tail];
    let last_part = if tail.is_empty() && !compressed { 0 } else { 1 };
    for (pi, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let pieces: Vec<&[u8]> = part.split(|&x| x == b':').collect();
        for (k, g) in pieces.iter().enumerate() {
            let is_last = pi == last_part && k == pieces.len() - 1;
            if g.contains(&b'.') {
                if !is_last || parse_ipv4(g, 0) != Some(g.len()) {
                    return false;
                }
                groups += 2;
            } else if g.is_empty() || g.len() > 4 || !g.iter().all(|&x| hex(x)) {
                return false;
            } else {
                groups += 1;
            }
        }
    }
    if compressed {
        (2..=7).contains(&groups)
    } else {
        groups == 8
    }
}

/// IPv6 addresses (see [`valid_ipv6`]) not inside a word; a zone (`%eth0`)
/// or port after them is left alone. Times (`10:20:30`), MAC addresses and
/// `Type::method` paths are not addresses.
fn ipv6(b: &[u8], out: &mut Vec<Found>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if !(hex(c) || c == b':') || !before_is(b, i, |p| !word(p) && p != b':' && p != b'.') {
            i += 1;
            continue;
        }
        let j = run(b, i, |x| hex(x) || x == b':' || x == b'.');
        let mut end = j;
        while end > i && b[end - 1] == b'.' {
            end -= 1;
        }
        if end >= i + 2 && b[end - 1] == b':' && b[end - 2] != b':' {
            end -= 1;
        }
        if after_is(b, j, |x| !word(x)) && valid_ipv6(&b[i..end]) {
            push(out, Detector::Ipv6, i, end);
        }
        i = j.max(i + 1);
    }
}

/// What the property tests' random strings are made of: pieces detectors
/// look for, and noise between them.
#[cfg(test)]
pub(crate) struct Mix {
    pub pieces: &'static [&'static str],
    pub noise: &'static [&'static str],
    /// Up to this many parts (less one) per string.
    pub parts: usize,
    /// A part is a piece one time in this many, else a run of noise.
    pub piece_one_in: usize,
    /// Up to this many noise strings (less one) per run.
    pub noise_run: usize,
}

/// `count` strings mixed from `mix`, the same on every run (xorshift64
/// from `seed`).
#[cfg(test)]
pub(crate) fn random_strings(mut seed: u64, count: usize, mix: &Mix) -> Vec<String> {
    let mut rand = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    (0..count)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..rand(mix.parts) {
                if rand(mix.piece_one_in) == 0 {
                    s.push_str(mix.pieces[rand(mix.pieces.len())]);
                } else {
                    for _ in 0..rand(mix.noise_run) {
                        s.push_str(mix.noise[rand(mix.noise.len())]);
                    }
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default blocked-key rules, as the plugin hands them to scanners.
    fn secret_key(k: &str) -> bool {
        thread_local! {
            static RULES: crate::config::Rules = crate::config::Rules::from_config(
                &sluice_sdk::Config::from_json("{}").unwrap(),
            )
            .unwrap();
        }
        RULES.with(|r| r.is_blocked_key(k))
    }

    /// What a detector finds in `s`, as substrings.
    fn found(d: Detector, s: &str) -> Vec<String> {
        let mut out = Vec::new();
        if candidates(s.as_bytes()) & d.bit() == 0 {
            // The pre-pass must never rule out a real match: check it agrees.
            scan(d, s, &secret_key, &mut out);
            assert!(
                out.is_empty(),
                "{} found {:?} in {s:?} but the pre-pass ruled it out",
                d.name(),
                out
            );
            return Vec::new();
        }
        scan(d, s, &secret_key, &mut out);
        out.iter().map(|f| s[f.start..f.end].to_string()).collect()
    }

    fn hits(d: Detector, s: &str, expected: &[&str]) {
        assert_eq!(found(d, s), expected, "{} on {s:?}", d.name());
    }

    fn none(d: Detector, s: &str) {
        hits(d, s, &[]);
    }

    #[test]
    fn names_round_trip() {
        for d in ALL {
            assert_eq!(Detector::from_name(d.name()), Some(d));
            assert_eq!(ALL[d as usize], d);
        }
        assert_eq!(Detector::from_name("emial"), None);
    }

    #[test]
    fn ordinary_values_trigger_nothing() {
        for v in [
            "GET",
            "/api/cart/123",
            "200",
            "frontend",
            "http.server.duration",
            "GET /api/v1/orders/12345",
            "1.2.3",
            "5b8aa5a2d2c872e8",
            "SELECT",
            "",
            "ok",
            "Mozilla/5.0 (X11; Linux x86_64)",
        ] {
            assert_eq!(candidates(v.as_bytes()), 0, "{v:?}");
        }
    }

    #[test]
    fn email() {
        hits(
            Detector::Email,
            "user alice@x.com logged in",
            &["alice@x.com"],
        );
        hits(
            Detector::Email,
            "first.last+tag@mail.example.co.uk.",
            &["first.last+tag@mail.example.co.uk"],
        );
        hits(
            Detector::Email,
            "mailto:bob@example.org",
            &["bob@example.org"],
        );
        hits(
            Detector::Email,
            "?email=carol@example.com&x=1",
            &["carol@example.com"],
        );
        hits(Detector::Email, "a@b.io, c@d.io", &["a@b.io", "c@d.io"]);
        none(Detector::Email, "lodash@4.17.21");
        none(Detector::Email, "@types/node");
        none(Detector::Email, "user@localhost");
        none(Detector::Email, "x@y.z");
        none(
            Detector::Email,
            "postgres://admin:hunter2@db.example.com/app",
        );
        none(Detector::Email, "https://alice@example.com/path");
        none(Detector::Email, "trailing@");
    }

    #[test]
    fn credit_card() {
        hits(
            Detector::CreditCard,
            "4111111111111111",
            &["4111111111111111"],
        );
        hits(
            Detector::CreditCard,
            "card 4111 1111 1111 1111 ok",
            &["4111 1111 1111 1111"],
        );
        hits(
            Detector::CreditCard,
            "5555-5555-5555-4444",
            &["5555-5555-5555-4444"],
        );
        hits(
            Detector::CreditCard,
            "amex 3782 822463 10005",
            &["3782 822463 10005"],
        );
        hits(
            Detector::CreditCard,
            "378282246310005",
            &["378282246310005"],
        );
        hits(
            Detector::CreditCard,
            "6011111111111117",
            &["6011111111111117"],
        );
        hits(
            Detector::CreditCard,
            "qty 100 4111111111111111",
            &["4111111111111111"],
        );
        hits(
            Detector::CreditCard,
            "100 4111 1111 1111 1111",
            &["4111 1111 1111 1111"],
        );
        hits(
            Detector::CreditCard,
            "a=4111111111111111&b=5500005555555559",
            &["4111111111111111", "5500005555555559"],
        );
        // Luhn failure.
        none(Detector::CreditCard, "4111111111111112");
        none(Detector::CreditCard, "4111 1111 1111 1112");
        // Timestamps: ms, µs and ns since the epoch.
        none(Detector::CreditCard, "1700000000000");
        none(Detector::CreditCard, "1700000000000000");
        none(Detector::CreditCard, "1700000000000000000");
        // Passes Luhn but no card network starts with 9.
        none(Detector::CreditCard, "9111111111111111");
        // Inside a word, a longer number, a decimal.
        none(Detector::CreditCard, "id4111111111111111");
        none(Detector::CreditCard, "41111111111111110");
        none(Detector::CreditCard, "0.4111111111111111");
        none(Detector::CreditCard, "4111111111111111.5");
        // Too short, too long, mixed separators inside groups.
        none(Detector::CreditCard, "411111111111");
        none(Detector::CreditCard, "41111111111111111111111");
        // UUIDs and hex ids.
        none(Detector::CreditCard, "550e8400-e29b-41d4-a716-446655440000");
        none(Detector::CreditCard, "12345678-1234-1234-1234-123456789012");
        none(Detector::CreditCard, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn luhn_and_prefixes() {
        let d = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(luhn(&d("79927398713")));
        assert!(!luhn(&d("79927398710")));
        assert!(is_card_number(&d("2221000000000009")));
        assert!(is_card_number(&d("3530111333300000")));
        assert!(is_card_number(&d("30569309025904")));
        assert!(!is_card_number(&d("1234567812345670")));
    }

    #[test]
    fn iban() {
        hits(
            Detector::Iban,
            "DE89370400440532013000",
            &["DE89370400440532013000"],
        );
        hits(
            Detector::Iban,
            "iban: DE89 3704 0044 0532 0130 00.",
            &["DE89 3704 0044 0532 0130 00"],
        );
        hits(
            Detector::Iban,
            "GB82 WEST 1234 5698 7654 32",
            &["GB82 WEST 1234 5698 7654 32"],
        );
        hits(
            Detector::Iban,
            "FR1420041010050500013M02606",
            &["FR1420041010050500013M02606"],
        );
        hits(Detector::Iban, "NO9386011117947", &["NO9386011117947"]);
        // Wrong check digits.
        none(Detector::Iban, "DE89370400440532013001");
        none(Detector::Iban, "GB82 WEST 1234 5698 7654 33");
        // Wrong length for the country, unknown country, lower case, in a word.
        none(Detector::Iban, "DE8937040044053201300");
        none(Detector::Iban, "ZZ89370400440532013000");
        none(Detector::Iban, "de89370400440532013000");
        none(Detector::Iban, "XDE89370400440532013000");
        none(Detector::Iban, "AB12CD34EF56GH78IJ90");
    }

    #[test]
    fn us_ssn() {
        hits(Detector::UsSsn, "ssn 123-45-6789", &["123-45-6789"]);
        hits(Detector::UsSsn, "(078-05-1120)", &["078-05-1120"]);
        none(Detector::UsSsn, "000-12-3456");
        none(Detector::UsSsn, "666-12-3456");
        none(Detector::UsSsn, "900-12-3456");
        none(Detector::UsSsn, "123-00-4567");
        none(Detector::UsSsn, "123-45-0000");
        none(Detector::UsSsn, "123456789");
        none(Detector::UsSsn, "1123-45-6789");
        none(Detector::UsSsn, "123-45-67890");
        none(Detector::UsSsn, "123-45-6789-1");
        none(Detector::UsSsn, "2024-01-15");
    }

    #[test]
    fn jwt() {
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        hits(Detector::Jwt, &format!("token={t}&x=1"), &[t]);
        hits(
            Detector::Jwt,
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
            &["eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."],
        );
        none(Detector::Jwt, "eyJhbGciOiJIUzI1NiJ9");
        none(Detector::Jwt, "keyJson.a.b");
        none(Detector::Jwt, "eyJ.x.y");
    }

    #[test]
    fn bearer_and_basic() {
        hits(
            Detector::Bearer,
            "Authorization: Bearer abc123DEF456ghi",
            &["abc123DEF456ghi"],
        );
        hits(
            Detector::Bearer,
            "bearer    mF_9.B5f-4.1JqM",
            &["mF_9.B5f-4.1JqM"],
        );
        hits(
            Detector::Bearer,
            "BEARER dGhpcyBpcyBhIHRva2Vu==",
            &["dGhpcyBpcyBhIHRva2Vu=="],
        );
        none(Detector::Bearer, "missing bearer token");
        none(Detector::Bearer, "bearer authentication failed");
        none(Detector::Bearer, "Bearer realm=\"example\"");
        none(Detector::Bearer, "forbearer abc123DEF456ghi");
        // "dXNlcjpwYXNz" is base64 of "user:pass".
        hits(
            Detector::BasicAuth,
            "Authorization: Basic dXNlcjpwYXNz",
            &["dXNlcjpwYXNz"],
        );
        hits(
            Detector::BasicAuth,
            "basic YWxhZGRpbjpvcGVuc2VzYW1l",
            &["YWxhZGRpbjpvcGVuc2VzYW1l"],
        );
        // Base64 without a colon inside, and prose.
        none(Detector::BasicAuth, "Basic aGVsbG8gd29ybGQ=");
        none(Detector::BasicAuth, "basic authentication is disabled");
        hits(
            Detector::BasicAuth,
            "postgres://admin:hunter2@db:5432/app",
            &["hunter2"],
        );
        hits(
            Detector::BasicAuth,
            "redis://:s3cret@cache:6379",
            &["s3cret"],
        );
        none(Detector::BasicAuth, "https://alice@example.com/x");
        none(Detector::BasicAuth, "https://example.com/a@b:c");
    }

    #[test]
    fn cloud_keys() {
        hits(
            Detector::AwsKey,
            "key AKIAIOSFODNN7EXAMPLE used",
            &["AKIAIOSFODNN7EXAMPLE"],
        );
        hits(
            Detector::AwsKey,
            "ASIAY34FZKBOKMUTVV7A",
            &["ASIAY34FZKBOKMUTVV7A"],
        );
        none(Detector::AwsKey, "AKIAIOSFODNN7EXAMPL");
        none(Detector::AwsKey, "AKIAIOSFODNN7EXAMPLEX");
        none(Detector::AwsKey, "XAKIAIOSFODNN7EXAMPLE");
        let g = "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe";
        hits(Detector::GcpKey, &format!("key={g}"), &[g]);
        none(Detector::GcpKey, "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQ");
        hits(
            Detector::GcpKey,
            "ya29.a0AfH6SMBx-abcdefghijklmnopqrstuvwxyz.",
            &["ya29.a0AfH6SMBx-abcdefghijklmnopqrstuvwxyz"],
        );
        none(Detector::GcpKey, "ya29.short");
        let gh = "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";
        hits(Detector::GithubToken, &format!("token {gh}"), &[gh]);
        let pat = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
        hits(Detector::GithubToken, pat, &[pat]);
        none(Detector::GithubToken, "ghp_short");
        none(
            Detector::GithubToken,
            "s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",
        );
        hits(
            Detector::SlackToken,
            "xoxb-1234567890-abcdefghij",
            &["xoxb-1234567890-abcdefghij"],
        );
        hits(
            Detector::SlackToken,
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
            &["T000/B000/XXXXXXXXXXXX"],
        );
        none(Detector::SlackToken, "xoxb-short");
        none(Detector::SlackToken, "xoxox");
    }

    /// The first pass counts in chunks; what straddles a chunk boundary,
    /// or fills a long value, must still count.
    #[test]
    fn long_values_count_across_chunks() {
        for pad in [1015, 1020, 1023, 2040, 5000] {
            let s = format!("{}card 4111111111111111 x", "a".repeat(pad));
            assert_ne!(
                candidates(s.as_bytes()) & Detector::CreditCard.bit(),
                0,
                "{pad}"
            );
            let s = format!("{}2001:db8::1", " ".repeat(pad));
            assert_ne!(candidates(s.as_bytes()) & Detector::Ipv6.bit(), 0, "{pad}");
        }
        let many = "1:".repeat(3000);
        let c = candidates(many.as_bytes());
        assert_ne!(c & Detector::Ipv6.bit(), 0);
        assert_eq!(c & Detector::CreditCard.bit(), 0);
        assert_eq!(
            candidates("A".repeat(5000).as_bytes()) & Detector::Email.bit(),
            0
        );
    }

    #[test]
    fn next2_finds_the_first_of_two_bytes() {
        let s = b"ab=cd:ef=gh::ij=kl:mn=op:qr=st:uvwxyz=:";
        for from in 0..=s.len() + 1 {
            let slow = s
                .get(from..)
                .and_then(|t| t.iter().position(|&c| c == b'=' || c == b':'))
                .map(|p| from + p);
            assert_eq!(next2(s, from, b'=', b':'), slow, "{from}");
        }
        let high = "é=日:".as_bytes();
        assert_eq!(next2(high, 0, b'=', b':'), Some(2));
        assert_eq!(next2(&[0x3d ^ 0x80; 16], 0, b'=', b':'), None);
    }

    #[test]
    fn vendor_tokens() {
        let sk = "sk_live_51Hx9QkLmN2pR7sT4vW8yZ0a";
        hits(Detector::StripeKey, &format!("charge with {sk}."), &[sk]);
        let rk = "rk_test_4eC39HqLyjWDarjtT1zdp7dcXy";
        hits(Detector::StripeKey, &format!("key={rk}&x=1"), &[rk]);
        none(Detector::StripeKey, "pk_live_51Hx9QkLmN2pR7sT4vW8yZ0a");
        none(Detector::StripeKey, "sk_live_short");
        none(Detector::StripeKey, "ask_live_51Hx9QkLmN2pR7sT4vW8yZ0a");
        let npm = "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
        hits(
            Detector::NpmToken,
            &format!("//registry.npmjs.org/:_authToken={npm}"),
            &[npm],
        );
        none(
            Detector::NpmToken,
            "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R",
        );
        none(
            Detector::NpmToken,
            "npm_config_cache_folder_for_this_project_x",
        );
        let pypi = "pypi-AgEIcHlwaS5vcmcCJDU3OTM5MjQ4LTMyZjctNGU3ZC1hNzI0LWU1MzE1ZTQ2ODc3NAACKlsz";
        hits(Detector::PypiToken, &format!("password = {pypi}"), &[pypi]);
        none(
            Detector::PypiToken,
            "pypi-simple-index-mirror-for-internal-packages-and-more-stuff",
        );
        let gl = "glpat-xK9mZ2qR7vT4wY8nB3cD";
        hits(
            Detector::GitlabToken,
            &format!("PRIVATE-TOKEN: {gl}"),
            &[gl],
        );
        let gl2 = "glpat-xK9mZ2qR7vT4wY8nB3cDeFgHiJkLmN.01.0w1x2y3z4";
        hits(Detector::GitlabToken, &format!("{gl2}."), &[gl2]);
        hits(
            Detector::GitlabToken,
            "glrt-t1_aB3cD4eF5gH6iJ7kL8mN",
            &["glrt-t1_aB3cD4eF5gH6iJ7kL8mN"],
        );
        none(Detector::GitlabToken, "glpat-short");
        none(Detector::GitlabToken, "xglpat-xK9mZ2qR7vT4wY8nB3cD");
        let oa = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6";
        hits(Detector::AiApiKey, &format!("OPENAI_API_KEY={oa}"), &[oa]);
        let legacy = "sk-T3BlbkFJa1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9";
        hits(Detector::AiApiKey, legacy, &[legacy]);
        let ant = "sk-ant-api03-Xy7_Qw3-Er5tYu8IoP1aS4dF6gH9jK2lZ0xC3vB5nM7qW9eR1tY3uI5oP7aS9dF1gH3jK5lZ7xC9vB1nM3qW5eR7tY9uI1oP3aS5dF7gH9AA";
        hits(Detector::AiApiKey, &format!("x-api-key: {ant}"), &[ant]);
        // Names that start with `sk-`: lower case, or too short.
        none(
            Detector::AiApiKey,
            "sk-worker-7d9c6b5f4d-x2x9k-abcdefghijklmnop",
        );
        none(Detector::AiApiKey, "sk-Ab3dEf6hIj9kLm2n");
        none(
            Detector::AiApiKey,
            "task-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3",
        );
        let az = "vQGEvWtv/tmq6PlRYQ0EcLWXzscdLrOQqJVyK/uyab9f0PM6c46YEfUdOblNLDsnIascdyZkjalfheZmWabW8Q==";
        hits(
            Detector::AzureStorageKey,
            &format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={az};EndpointSuffix=core.windows.net"
            ),
            &[az],
        );
        none(Detector::AzureStorageKey, &format!("x{az}"));
        none(Detector::AzureStorageKey, &az[1..]);
        none(Detector::AzureStorageKey, &format!("{}==", "A".repeat(86)));
    }

    #[test]
    fn secret_assignment() {
        let d = Detector::SecretAssignment;
        hits(d, "login failed password=hunter2 user=alice", &["hunter2"]);
        hits(d, "password = hunter2", &["hunter2"]);
        hits(d, "api_key: 9f8e7d6c5b4a", &["9f8e7d6c5b4a"]);
        hits(d, "client_secret:abc", &["abc"]);
        hits(
            d,
            r#"{"password": "p@ss w0rd", "user": "bob"}"#,
            &["p@ss w0rd"],
        );
        hits(d, r#"{"token":"a\"b"}"#, &[r#"a\"b"#]);
        hits(d, r#"body="{\"api_key\":\"k3y-123\"}""#, &["k3y-123"]);
        hits(d, "{'secret': 's3cr3t'}", &["s3cr3t"]);
        hits(d, r#"{"password"=>"hunter2"}"#, &["hunter2"]);
        hits(
            d,
            "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
        );
        hits(d, "X-Api-Key: abc123def456", &["abc123def456"]);
        hits(d, "Authorization: Bearer abc.def", &["abc.def"]);
        hits(d, "authorization=\"Token t0k3n\"", &["t0k3n"]);
        hits(d, "/cb?access_token=ya29x&state=1", &["ya29x"]);
        hits(d, "db_password=pa:ss; next", &["pa:ss"]);
        hits(d, "--password=hunter2.", &["hunter2"]);
        hits(d, "token := abc123", &["abc123"]);
        // Not credentials, not secrets, not assignments.
        none(d, "user=alice path=/health token_count=42");
        none(d, "password_reset=true tokens=5 secretary=bob");
        for v in [
            "password=true",
            "password=",
            "password=\"\"",
            "secret=null",
            "token=None",
            "password=****",
            "password=xxxxxxxx",
            "password=[REDACTED]",
            r#""password"=>"[FILTERED]""#,
            "token=${API_TOKEN}",
            "password=$DB_PASSWORD",
            "token={{ .Values.token }}",
            "api_key=<your-api-key>",
            "password: required",
            "invalid token: expired",
            "if token == nil",
            "token != expected",
            "https://token:x@host/",
            "password::x",
        ] {
            none(d, v);
        }
        // The same rules as blocked keys: custom ones count, built-in ones
        // can be off.
        let custom = crate::config::Rules::from_config(
            &sluice_sdk::Config::from_json(
                r#"{"builtin_blocked_keys": false, "blocked_keys": ["pin"]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        let mut out = Vec::new();
        let key = |k: &str| custom.is_blocked_key(k);
        scan(d, "pin=1234 password=hunter2", &key, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].start, out[0].end), (4, 8));
    }

    #[test]
    fn private_key() {
        let k = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        hits(Detector::PrivateKey, &format!("key: {k} trailing"), &[k]);
        hits(
            Detector::PrivateKey,
            "-----BEGIN PRIVATE KEY-----\\nMIIEv",
            &["-----BEGIN PRIVATE KEY-----\\nMIIEv"],
        );
        none(
            Detector::PrivateKey,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        );
        none(Detector::PrivateKey, "-----BEGIN PUBLIC KEY-----");
    }

    #[test]
    fn phone() {
        hits(
            Detector::Phone,
            "call +44 20 7946 0958 now",
            &["+44 20 7946 0958"],
        );
        hits(Detector::Phone, "+1 (555) 010-9999", &["+1 (555) 010-9999"]);
        hits(Detector::Phone, "+4915112345678", &["+4915112345678"]);
        hits(Detector::Phone, "(415) 555-2671", &["(415) 555-2671"]);
        hits(Detector::Phone, "415-555-2671", &["415-555-2671"]);
        hits(Detector::Phone, "415.555.2671", &["415.555.2671"]);
        hits(Detector::Phone, "1-800-555-0199", &["1-800-555-0199"]);
        none(Detector::Phone, "4155552671");
        none(Detector::Phone, "1700000000000");
        none(Detector::Phone, "415-555-26710");
        none(Detector::Phone, "115-555-2671");
        none(Detector::Phone, "415-155-2671");
        none(Detector::Phone, "415-555.2671");
        none(Detector::Phone, "+1234");
        none(Detector::Phone, "2024-01-15T10:20:30+0100");
        none(Detector::Phone, "a+12345678901");
        none(Detector::Phone, "550e8400-e29b-41d4-a716-446655440000");
    }

    #[test]
    fn ipv4() {
        hits(Detector::Ipv4, "10.0.0.1", &["10.0.0.1"]);
        hits(
            Detector::Ipv4,
            "from 192.168.1.254:8080.",
            &["192.168.1.254"],
        );
        hits(
            Detector::Ipv4,
            "255.255.255.255/32, 0.0.0.0",
            &["255.255.255.255", "0.0.0.0"],
        );
        none(Detector::Ipv4, "1.2.3");
        none(Detector::Ipv4, "1.2.3.4.5");
        none(Detector::Ipv4, "v1.2.3.4");
        none(Detector::Ipv4, "256.1.1.1");
        none(Detector::Ipv4, "01.2.3.4");
        none(Detector::Ipv4, "10.0.19045.1");
        none(Detector::Ipv4, "1.2.3.4a");
        none(Detector::Ipv4, "1.2.3.1234");
    }

    #[test]
    fn ipv6() {
        hits(
            Detector::Ipv6,
            "2001:db8:85a3::8a2e:370:7334",
            &["2001:db8:85a3::8a2e:370:7334"],
        );
        hits(
            Detector::Ipv6,
            "[2001:0db8:0000:0000:0000:ff00:0042:8329]:443",
            &["2001:0db8:0000:0000:0000:ff00:0042:8329"],
        );
        hits(Detector::Ipv6, "peer fe80::1%eth0", &["fe80::1"]);
        hits(Detector::Ipv6, "::1", &["::1"]);
        hits(Detector::Ipv6, "::ffff:10.0.0.1", &["::ffff:10.0.0.1"]);
        none(Detector::Ipv6, "10:20:30");
        none(Detector::Ipv6, "12:30:45.123");
        none(Detector::Ipv6, "00:1a:2b:3c:4d:5e");
        none(Detector::Ipv6, "std::vector::push");
        none(Detector::Ipv6, "a :: b");
        none(Detector::Ipv6, "1::2::3");
        none(Detector::Ipv6, "fe80::1g");
        none(Detector::Ipv6, "1:2:3:4:5:6:7:8:9");
        none(Detector::Ipv6, "2001:db8::12345");
    }

    /// The pre-pass must never rule out what a scanner finds (that would
    /// fail open), and no scanner may panic, on arbitrary text: known
    /// positives spliced into random noise, multi-byte characters included.
    #[test]
    fn pre_pass_never_hides_a_match() {
        const PIECES: &[&str] = &[
            "alice@x.com",
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "123-45-6789",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "Bearer abc123DEF456",
            "Basic dXNlcjpwYXNz",
            "https://u:pw@h/",
            "AKIAIOSFODNN7EXAMPLE",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "ya29.a0AfH6SMBxabcdefghijklmnop",
            "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",
            "github_pat_11ABCDEFG0123456789_abcd",
            "xoxb-1234567890-abcdefghij",
            "hooks.slack.com/services/T000/B000/XXXX",
            "-----BEGIN PRIVATE KEY-----x",
            "+44 20 7946 0958",
            "(415) 555-2671",
            "415.555.2671",
            "1-800-555-0199",
            "10.0.0.1",
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:1.2.3.4",
            "sk_live_51Hx9QkLmN2pR7sT4vW8yZ0a",
            "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            "npm_acdefhijlmnopqrstuvwzacdefhijlmnopqr",
            "pypi-AgEIcHlwaS5vcmcCJDU3OTM5MjQ4LTMyZjctNGU3ZC1hNzI0",
            "glpat-xK9mZ2qR7vT4wY8nB3cD",
            "sk-T3BlbkFJa1B2c3D4e5F6g7H8i9J0k1L2",
            "vQGEvWtv/tmq6PlRYQ0EcLWXzscdLrOQqJVyK/uyab9f0PM6c46YEfUdOblNLDsnIascdyZkjalfheZmWabW8Q==",
            "password=",
            "token: ",
            "\"secret\": \"",
            "pin=",
        ];
        const NOISE: &[&str] = &[
            " ", "-", ".", ":", "@", "+", "(", ")", "/", "?", "=", "_", "a", "Z", "0", "9", "x",
            "é", "日本", "\t", "\n", "'", "\"", ",", "#", "%",
        ];
        let mix = Mix {
            pieces: PIECES,
            noise: NOISE,
            parts: 6,
            piece_one_in: 3,
            noise_run: 4,
        };
        let mut out = Vec::new();
        for s in random_strings(0x2545_f491_4f6c_dd1d, 20_000, &mix) {
            let cand = candidates(s.as_bytes());
            for d in ALL {
                out.clear();
                scan(d, &s, &secret_key, &mut out);
                assert!(
                    out.is_empty() || cand & d.bit() != 0,
                    "{} found {:?} in {s:?} but the pre-pass ruled it out",
                    d.name(),
                    out
                );
                for f in &out {
                    assert!(
                        f.start < f.end && s.is_char_boundary(f.start) && s.is_char_boundary(f.end)
                    );
                }
            }
        }
    }
}
