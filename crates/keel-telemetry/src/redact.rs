//! Redaction of free text before it reaches a log line.

/// Masks email addresses (`jane@example.com` → `j***@example.com`) and the values of
/// `password=`, `token=`, `secret=` style pairs.
pub fn redact(text: &str) -> String {
    let masked = keel_ids::mask_email(text);
    let mut out = String::with_capacity(masked.len());
    let mut rest = masked.as_str();
    const KEYS: [&str; 5] = ["password=", "token=", "secret=", "api_key=", "authorization: bearer "];
    'outer: while !rest.is_empty() {
        let lower = rest.to_ascii_lowercase();
        let hit = KEYS.iter().filter_map(|k| lower.find(k).map(|i| (i, k.len()))).min();
        match hit {
            Some((i, len)) => {
                out.push_str(&rest[..i + len]);
                out.push_str("***");
                let after = &rest[i + len..];
                match after.find(|c: char| c.is_whitespace() || c == '&' || c == ',' || c == '"') {
                    Some(end) => rest = &after[end..],
                    None => break 'outer,
                }
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_emails_and_secrets() {
        assert_eq!(redact("to jane@example.com password=hunter2 ok"), "to j***@example.com password=*** ok");
        assert_eq!(redact("url?token=abc&x=1"), "url?token=***&x=1");
        assert_eq!(redact("Authorization: Bearer abc.def"), "Authorization: Bearer ***");
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
