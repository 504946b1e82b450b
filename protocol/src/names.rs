//! Display names of nodes and contacts.
//!
//! Names are shown to people and used on the command line (`hearth contacts
//! remove NAME`), so they are short, printable and trimmed.

/// Longest accepted name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty after trimming white space.
    #[error("the name is empty: choose a name such as \"alice\"")]
    Empty,
    /// The name is longer than [`MAX_NAME_BYTES`].
    #[error("the name is {0} bytes long; use at most 64")]
    TooLong(usize),
    /// The name holds a control character (newline, escape, ...).
    #[error("the name contains a control character; use printable characters only")]
    ControlCharacter,
}

/// Trims `raw` and checks that it is a usable name.
pub fn validate_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(name.to_owned())
}

/// Returns `wanted`, or `wanted (2)`, `wanted (3)`, ... : the first variant
/// for which `taken` is false. Used so that two contacts never share a name.
pub fn unique_name(wanted: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(wanted) {
        return wanted.to_owned();
    }
    (2u32..).map(|n| format!("{wanted} ({n})")).find(|candidate| !taken(candidate)).unwrap_or_else(|| wanted.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(validate_name("  alice "), Ok("alice".to_owned()));
        assert_eq!(validate_name("   "), Err(NameError::Empty));
        assert_eq!(validate_name("a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(validate_name(&"x".repeat(65)), Err(NameError::TooLong(65)));
        assert_eq!(validate_name("Grand-mère Élise"), Ok("Grand-mère Élise".to_owned()));
    }

    #[test]
    fn unique_name_appends_a_counter() {
        let taken = ["bob", "bob (2)"];
        assert_eq!(unique_name("bob", |n| taken.contains(&n)), "bob (3)");
        assert_eq!(unique_name("carol", |n| taken.contains(&n)), "carol");
    }
}
