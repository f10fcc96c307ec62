//! HMAC-SHA256 (RFC 2104) on top of `sha2`, with the padded key absorbed
//! once so that each value costs two SHA-256 finishes.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// A keyed HMAC-SHA256.
#[derive(Clone)]
pub(crate) struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for Hmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print anything derived from the secret.
        f.write_str("Hmac(..)")
    }
}

impl Hmac {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut ipad = [0x36u8; BLOCK];
        let mut opad = [0x5cu8; BLOCK];
        for i in 0..BLOCK {
            ipad[i] ^= k[i];
            opad[i] ^= k[i];
        }
        let mut inner = Sha256::new();
        inner.update(ipad);
        let mut outer = Sha256::new();
        outer.update(opad);
        Self { inner, outer }
    }

    pub(crate) fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let inner = inner.finalize();
        let mut outer = self.outer.clone();
        outer.update(inner);
        let mut out = [0u8; 32];
        out.copy_from_slice(&outer.finalize());
        out
    }

    /// The MAC as 64 lowercase hex digits, appended to `out`.
    pub(crate) fn hex_into(&self, message: &[u8], out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for byte in self.mac(message) {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hmac, m: &[u8]) -> String {
        let mut s = String::new();
        h.hex_into(m, &mut s);
        s
    }

    #[test]
    fn rfc_4231_test_case_1() {
        let h = Hmac::new(&[0x0b; 20]);
        assert_eq!(
            hex(&h, b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc_4231_test_case_2() {
        let h = Hmac::new(b"Jefe");
        assert_eq!(
            hex(&h, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc_4231_test_case_6_key_longer_than_a_block() {
        let h = Hmac::new(&[0xaa; 131]);
        assert_eq!(
            hex(
                &h,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn reusable() {
        let h = Hmac::new(b"k");
        assert_eq!(hex(&h, b"a"), hex(&h, b"a"));
        assert_ne!(hex(&h, b"a"), hex(&h, b"b"));
        assert_eq!(format!("{h:?}"), "Hmac(..)");
    }
}
