//! Entry names: what a file or folder in a shared folder may be called, and
//! the names Hearth makes up itself (collision and conflict names).
//!
//! Names arrive from other members' changes and from the local disk, and are
//! eventually written to disk on every member's machine, whatever its system.
//! A name is therefore accepted only if it is one plain path component that
//! Linux, macOS and Windows can all store and that cannot climb out of the
//! share: see [`validate_name`]. Joining names onto the share directory goes
//! through [`safe_join`], which validates every component and so can only
//! produce a path below the share root.
//!
//! Names Hearth invents ([`numbered_name`] for siblings whose names collide,
//! [`conflict_name`] for the losing side of concurrent edits) insert their
//! marker before the extension, so `report.pdf` still opens as a PDF, and are
//! themselves valid names whenever the input name is.
//!
//! Case: two names collide when their [`collision_key`]s are equal, which is
//! `str::to_lowercase` (Unicode lower-casing). This is deliberately simple and
//! is not full case folding (`"STRASSE"` and `"straße"` do not collide) nor
//! Unicode normalisation (a precomposed `é` and `e` + combining accent do not
//! collide, although macOS treats them as one name). It matches what
//! case-insensitive file systems do for the common cases; changing it changes
//! display names, so it is part of the document format.

use std::path::{Component, Path, PathBuf};

/// Longest accepted name in bytes of UTF-8 (`NAME_MAX` on Linux and most
/// file systems).
pub const MAX_NAME_BYTES: usize = 255;

/// Longest member name kept in a conflict name, in bytes; longer member names
/// are cut (on a character boundary).
const MAX_MEMBER_BYTES: usize = 64;

/// Longest date text kept in a conflict name, in bytes.
const MAX_DATE_BYTES: usize = 40;

/// Longest suffix after the last dot that is still treated as an extension
/// when Hearth inserts a marker into a name (`"a.b c d e f g h i j k l m n"`
/// has none).
const MAX_EXTENSION_BYTES: usize = 16;

/// Windows device names (compared case-insensitively with the part of the
/// name before its first dot, trailing spaces ignored). Windows opens the
/// device instead of a file for any of them, with any extension: `nul.txt`
/// is the null device. The superscript variants and the 0 variants are listed
/// in Microsoft's "Naming Files, Paths, and Namespaces".
const WINDOWS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹",
    "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²",
    "LPT³", "CONIN$", "CONOUT$",
];

/// Why a name was refused. Names are shown with Rust string escaping
/// (`"a\u{1b}b"`) so that a hostile name cannot drive the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is the empty string.
    #[error("the name is empty: every file and folder needs a name")]
    Empty,
    /// The name is `.` or `..`, which mean "this folder" and "the parent
    /// folder" in a path.
    #[error("the name {name:?} means \"this folder\" or \"the parent folder\" in a path and cannot name a file")]
    DotOrDotDot {
        /// The refused name.
        name: String,
    },
    /// The name contains `/` or `\`, which separate folders in a path (on
    /// Windows both do), so the name would point somewhere else.
    #[error("the name {name:?} contains {separator:?}, which separates folders in a path; rename it without slashes or backslashes")]
    Separator {
        /// The refused name.
        name: String,
        /// The separator found (`/` or `\`).
        separator: char,
    },
    /// The name contains a NUL character, which ends a path for the
    /// operating system.
    #[error("the name {name:?} contains a NUL character, which no file system accepts")]
    Nul {
        /// The refused name.
        name: String,
    },
    /// The name contains a control character (newline, tab, escape, DEL, the
    /// C1 range ...).
    #[error("the name {name:?} contains the control character U+{:04X}; rename it using printable characters only", u32::from(*character))]
    ControlCharacter {
        /// The refused name.
        name: String,
        /// The first control character found.
        character: char,
    },
    /// The name is longer than [`MAX_NAME_BYTES`] bytes of UTF-8.
    #[error("the name is {bytes} bytes long in UTF-8 but file systems accept at most 255 bytes; shorten it")]
    TooLong {
        /// Length of the refused name in bytes.
        bytes: usize,
    },
    /// The name is a Windows device name (`CON`, `NUL.txt`, `com1.log` ...),
    /// which Windows members could not store.
    #[error("the name {name:?} is reserved for the device {device} on Windows (CON, PRN, AUX, NUL, COM0-9 and LPT0-9, with any extension); rename it so every member can store it")]
    WindowsReserved {
        /// The refused name.
        name: String,
        /// The device it names, upper case (`"NUL"`).
        device: String,
    },
    /// The name ends with a dot or a space, which Windows silently strips, so
    /// it would become a different name there.
    #[error(
        "the name {name:?} ends with a dot or a space, which Windows drops silently; remove the trailing character"
    )]
    TrailingDotOrSpace {
        /// The refused name.
        name: String,
    },
}

/// Why [`safe_join`] refused a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// One component is not a valid name.
    #[error("path component {} is not a usable name: {reason}", index + 1)]
    InvalidComponent {
        /// Position of the component in the slice, from 0.
        index: usize,
        /// Why the name was refused.
        reason: NameError,
    },
    /// A component that passed [`validate_name`] is still not one plain
    /// component for this platform's path parser (for example a drive prefix
    /// such as `C:` on Windows). Defence in depth: never seen on Unix.
    #[error("path component {} ({component:?}) is not a plain file name on this system", index + 1)]
    NotPlain {
        /// Position of the component in the slice, from 0.
        index: usize,
        /// The refused component.
        component: String,
    },
}

/// Checks that `name` can name a file or folder in a share on every member's
/// system and cannot refer to anything but one entry of its folder.
///
/// Refused, in this order: the empty name; `.` and `..`; longer than
/// [`MAX_NAME_BYTES`] bytes; `/` or `\`; NUL; any other control character
/// (`char::is_control`: C0, DEL, C1); Windows device names, also with an
/// extension and in any case; a trailing dot or space.
///
/// Accepted on purpose: leading dots (`.bashrc`), leading spaces, and the
/// characters `< > : " | ? *` that Windows refuses but that are common on the
/// other systems (a Windows node must map them itself).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotOrDotDot { name: name.to_owned() });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { bytes: name.len() });
    }
    if let Some(separator) = name.chars().find(|c| *c == '/' || *c == '\\') {
        return Err(NameError::Separator { name: name.to_owned(), separator });
    }
    if name.contains('\0') {
        return Err(NameError::Nul { name: name.to_owned() });
    }
    if let Some(character) = name.chars().find(|c| c.is_control()) {
        return Err(NameError::ControlCharacter { name: name.to_owned(), character });
    }
    if let Some(device) = windows_device(name) {
        return Err(NameError::WindowsReserved { name: name.to_owned(), device: device.to_owned() });
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::TrailingDotOrSpace { name: name.to_owned() });
    }
    Ok(())
}

/// The Windows device `name` refers to, if any.
fn windows_device(name: &str) -> Option<&'static str> {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    WINDOWS_DEVICES.iter().copied().find(|device| base.eq_ignore_ascii_case(device))
}

/// The key under which two names collide in one folder: Unicode lower case
/// (see the module documentation for what this does not cover).
pub fn collision_key(name: &str) -> String {
    name.to_lowercase()
}

/// Splits `name` into stem and extension (with its dot) at the last dot:
/// `"a.tar.gz"` gives `("a.tar", ".gz")`.
///
/// There is no extension when there is no dot, when the only dot starts the
/// name (`".bashrc"`), when the name ends with a dot, or when the part after
/// the dot does not look like an extension (longer than 16 bytes or
/// containing a space: `"Mr. Smith"` has none).
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => {
            let ext = &name[dot + 1..];
            if ext.is_empty() || ext.len() > MAX_EXTENSION_BYTES || ext.contains(' ') {
                (name, "")
            } else {
                name.split_at(dot)
            }
        }
        _ => (name, ""),
    }
}

/// `name` with `marker` inserted before the extension, the stem cut (on a
/// character boundary) so that the result fits in [`MAX_NAME_BYTES`].
///
/// `marker` must be at most 128 bytes; then at least 100 bytes of stem fit.
fn insert_before_extension(name: &str, marker: &str) -> String {
    let (stem, ext) = split_extension(name);
    let budget = MAX_NAME_BYTES.saturating_sub(marker.len() + ext.len());
    let stem = truncate_to(stem, budget);
    let mut out = String::with_capacity(stem.len() + marker.len() + ext.len());
    out.push_str(stem);
    out.push_str(marker);
    out.push_str(ext);
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
fn truncate_to(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `name (n).ext`: the display name of the `n`-th entry (n >= 2) whose name
/// collides with a sibling's. `numbered_name("photo.jpg", 2)` is
/// `"photo (2).jpg"`, `numbered_name(".bashrc", 3)` is `".bashrc (3)"`.
///
/// If `name` is valid (see [`validate_name`]) the result is valid too: the
/// stem is shortened if the result would exceed [`MAX_NAME_BYTES`].
pub fn numbered_name(name: &str, n: u64) -> String {
    insert_before_extension(name, &format!(" ({n})"))
}

/// `name (conflict from <member> <date>).ext`: the name given to the losing
/// version of a file edited concurrently by two members.
///
/// `member` and `date` (the caller formats the date, for example
/// `2025-03-01`: this crate never reads the clock) are made safe first:
/// separators and control characters become `_`, surrounding spaces and
/// dots are removed, the member name is cut to 64 bytes and the date to 40;
/// an empty member becomes `unknown` and an empty date is left out. If `name`
/// is valid the result is valid, and the extension is kept:
/// `conflict_name("notes.txt", "bob", "2025-03-01")` is
/// `"notes (conflict from bob 2025-03-01).txt"`; `".bashrc"` gives
/// `".bashrc (conflict from bob 2025-03-01)"`.
pub fn conflict_name(name: &str, member: &str, date: &str) -> String {
    let member = sanitize_label(member, MAX_MEMBER_BYTES);
    let member = if member.is_empty() { "unknown".to_owned() } else { member };
    let date = sanitize_label(date, MAX_DATE_BYTES);
    let marker = if date.is_empty() {
        format!(" (conflict from {member})")
    } else {
        format!(" (conflict from {member} {date})")
    };
    insert_before_extension(name, &marker)
}

/// Makes free text safe to embed in a name: separators and control
/// characters become `_`, outer spaces and dots go, at most `max` bytes.
fn sanitize_label(text: &str, max: usize) -> String {
    let mapped: String = text.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    let trimmed = mapped.trim_matches(|c: char| c == ' ' || c == '.' || c.is_whitespace());
    truncate_to(trimmed, max).trim_end_matches(|c: char| c == ' ' || c == '.' || c.is_whitespace()).to_owned()
}

/// Joins `components` (names of entries, outermost first) onto `root`,
/// refusing anything that could resolve outside `root`.
///
/// Every component must pass [`validate_name`] and must parse as exactly one
/// plain component on this platform, so the result is `root` followed by
/// exactly those components: it is lexically below `root` (or `root` itself
/// for an empty slice). Pure path manipulation, no file-system access: the
/// caller still has to make sure that no directory on the way is a symbolic
/// link pointing elsewhere. `root` is trusted and not checked.
pub fn safe_join(root: &Path, components: &[&str]) -> Result<PathBuf, JoinError> {
    let mut path = root.to_path_buf();
    for (index, component) in components.iter().enumerate() {
        validate_name(component).map_err(|reason| JoinError::InvalidComponent { index, reason })?;
        let mut parsed = Path::new(component).components();
        match (parsed.next(), parsed.next()) {
            (Some(Component::Normal(part)), None) if part == std::ffi::OsStr::new(component) => path.push(part),
            _ => return Err(JoinError::NotPlain { index, component: (*component).to_owned() }),
        }
    }
    debug_assert!(path.starts_with(root));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_split_at_the_last_plausible_dot() {
        assert_eq!(split_extension("a.tar.gz"), ("a.tar", ".gz"));
        assert_eq!(split_extension(".bashrc"), (".bashrc", ""));
        assert_eq!(split_extension(".config.json"), (".config", ".json"));
        assert_eq!(split_extension("Makefile"), ("Makefile", ""));
        assert_eq!(split_extension("Mr. Smith"), ("Mr. Smith", ""));
        assert_eq!(split_extension("x.averyveryverylongextension"), ("x.averyveryverylongextension", ""));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_to("ééé", 3), "é");
        assert_eq!(truncate_to("abc", 10), "abc");
    }
}
