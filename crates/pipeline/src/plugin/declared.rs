//! What a component declares about itself in custom sections, read without
//! instantiating it. Today that is one thing: the failure policy a plugin
//! wants when the config does not choose one (`sluice:on-error`, written by
//! the SDK's `export_plugin!(P, on_error = "...")`).

use crate::config::OnError;

/// The custom section holding a plugin's default failure policy.
pub const ON_ERROR_SECTION: &str = "sluice:on-error";

/// The failure policy `bytes` (a component) declares, if any. A section with
/// an unknown value is an error, so a typo in a plugin cannot quietly turn a
/// fail-closed plugin into a fail-open one.
pub fn declared_on_error(bytes: &[u8]) -> Result<Option<OnError>, String> {
    let Some(value) = find_custom_section(bytes, ON_ERROR_SECTION, 0) else {
        return Ok(None);
    };
    match value {
        b"pass" => Ok(Some(OnError::Pass)),
        b"drop" => Ok(Some(OnError::Drop)),
        b"reject" => Ok(Some(OnError::Reject)),
        other => Err(format!(
            "its {ON_ERROR_SECTION} section says {:?}; expected pass, drop or reject",
            String::from_utf8_lossy(other)
        )),
    }
}

/// Finds the first custom section called `name` in a core module or a
/// component, looking inside the modules and components a component nests.
/// Anything malformed reads as "not found": compiling the component reports
/// malformed files properly.
fn find_custom_section<'a>(bytes: &'a [u8], name: &str, depth: u32) -> Option<&'a [u8]> {
    // The binary header: magic, then a version and layer (layer 1 is a component).
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" || depth > 8 {
        return None;
    }
    let component = bytes[6..8] == [1, 0];
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = leb_u32(bytes, &mut at)? as usize;
        let body = bytes.get(at..at.checked_add(size)?)?;
        at += size;
        match id {
            0 => {
                let mut pos = 0;
                let len = leb_u32(body, &mut pos)? as usize;
                let section_name = body.get(pos..pos.checked_add(len)?)?;
                if section_name == name.as_bytes() {
                    return Some(&body[pos + len..]);
                }
            }
            // A component's core module (1) and nested component (4) sections.
            1 | 4 if component => {
                if let Some(found) = find_custom_section(body, name, depth + 1) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

fn leb_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![id];
        let mut len = body.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(body);
        out
    }

    fn custom(name: &str, value: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(value);
        section(0, &body)
    }

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn finds_the_policy_in_a_module_nested_in_a_component() {
        let mut module = MODULE.to_vec();
        module.extend(section(1, &[0])); // an empty type section, not nested
        module.extend(custom("other", b"x"));
        module.extend(custom(ON_ERROR_SECTION, b"reject"));
        let mut component = COMPONENT.to_vec();
        component.extend(custom("producers", b"..."));
        component.extend(section(1, &module));
        assert_eq!(declared_on_error(&component), Ok(Some(OnError::Reject)));
        assert_eq!(declared_on_error(&module), Ok(Some(OnError::Reject)));
    }

    #[test]
    fn no_section_means_no_declaration_and_a_bad_value_is_an_error() {
        let mut component = COMPONENT.to_vec();
        component.extend(section(1, MODULE));
        assert_eq!(declared_on_error(&component), Ok(None));
        assert_eq!(declared_on_error(b"not wasm"), Ok(None));
        let mut bad = MODULE.to_vec();
        bad.extend(custom(ON_ERROR_SECTION, b"ignore"));
        assert!(declared_on_error(&bad).unwrap_err().contains("\"ignore\""));
        // A section whose size runs past the end is not read.
        let mut truncated = MODULE.to_vec();
        truncated.extend([0, 0x7f, 3]);
        assert_eq!(declared_on_error(&truncated), Ok(None));
    }
}
