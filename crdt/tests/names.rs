//! Entry-name validation against hostile input, safe joining onto the share
//! directory, and the names Hearth makes up (numbered and conflict names).

use std::path::{Component, Path};

use hearth_crdt::names::{
    collision_key, conflict_name, numbered_name, safe_join, validate_name, JoinError, NameError, MAX_NAME_BYTES,
};

#[test]
fn ordinary_names_are_accepted() {
    for name in [
        "notes.txt",
        ".bashrc",
        ".config",
        "Grand-mère Élise",
        "photo (2).jpg",
        "...a",
        " leading space",
        "a..b",
        "CONSOLE",
        "COM10",
        "LPT",
        "nul_file",
        "conflict: yes?",
        "日本語のファイル名",
        "emoji 🎉",
        &"x".repeat(MAX_NAME_BYTES),
    ] {
        assert_eq!(validate_name(name), Ok(()), "{name:?}");
    }
}

#[test]
fn empty_and_dot_names_are_refused() {
    assert_eq!(validate_name(""), Err(NameError::Empty));
    assert!(matches!(validate_name("."), Err(NameError::DotOrDotDot { .. })));
    assert!(matches!(validate_name(".."), Err(NameError::DotOrDotDot { .. })));
}

#[test]
fn separators_and_absolute_paths_are_refused() {
    for (name, separator) in
        [("a/b", '/'), ("/etc/passwd", '/'), ("../x", '/'), ("a\\b", '\\'), ("..\\..\\x", '\\'), ("C:\\Windows", '\\')]
    {
        assert_eq!(validate_name(name), Err(NameError::Separator { name: name.to_owned(), separator }), "{name:?}");
    }
}

#[test]
fn nul_and_control_characters_are_refused() {
    assert!(matches!(validate_name("a\0b"), Err(NameError::Nul { .. })));
    assert!(matches!(validate_name("\0"), Err(NameError::Nul { .. })));
    for c in ['\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{1}'] {
        let name = format!("a{c}b");
        assert_eq!(validate_name(&name), Err(NameError::ControlCharacter { name: name.clone(), character: c }));
    }
}

#[test]
fn long_names_are_refused_by_bytes_not_characters() {
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    assert_eq!(validate_name(&long), Err(NameError::TooLong { bytes: 256 }));
    // 128 two-byte characters: 128 characters but 256 bytes.
    let wide = "é".repeat(128);
    assert_eq!(validate_name(&wide), Err(NameError::TooLong { bytes: 256 }));
    assert_eq!(validate_name(&"é".repeat(127)), Ok(()));
}

#[test]
fn windows_device_names_are_refused_with_or_without_extension() {
    let mut refused = vec!["CON", "PRN", "AUX", "NUL"];
    let numbered: Vec<String> = (0..=9).flat_map(|n| [format!("COM{n}"), format!("LPT{n}")]).collect();
    refused.extend(numbered.iter().map(String::as_str));
    refused.extend(["COM¹", "lpt³", "CONIN$", "conout$"]);
    for device in refused {
        for name in [
            device.to_owned(),
            device.to_lowercase(),
            format!("{device}.txt"),
            format!("{}.tar.gz", device.to_lowercase()),
            format!("{device} .log"),
        ] {
            let error = validate_name(&name).expect_err(&name);
            assert!(matches!(error, NameError::WindowsReserved { .. }), "{name:?}: {error:?}");
        }
    }
    assert_eq!(
        validate_name("Nul.txt"),
        Err(NameError::WindowsReserved { name: "Nul.txt".to_owned(), device: "NUL".to_owned() })
    );
}

#[test]
fn trailing_dots_and_spaces_are_refused() {
    for name in ["a.", "a ", "a. ", "...", "a.. "] {
        assert!(matches!(validate_name(name), Err(NameError::TrailingDotOrSpace { .. })), "{name:?}");
    }
}

#[test]
fn error_messages_are_readable_and_escape_the_name() {
    let message = validate_name("evil\u{1b}[2J.txt").expect_err("control").to_string();
    assert!(message.contains("control character U+001B"), "{message}");
    assert!(!message.contains('\u{1b}'), "the raw escape must not reach a terminal: {message}");
    let message = validate_name("a/b").expect_err("separator").to_string();
    assert!(message.contains("separates folders"), "{message}");
    let message = validate_name("com1.txt").expect_err("device").to_string();
    assert!(message.contains("reserved for the device COM1 on Windows"), "{message}");
    let message = validate_name(&"x".repeat(300)).expect_err("long").to_string();
    assert!(message.contains("300 bytes"), "{message}");
}

#[test]
fn safe_join_stays_under_the_root() {
    let root = Path::new("/srv/hearth/shares/family");
    let joined = safe_join(root, &["Photos", "2024", "beach.jpg"]).expect("valid");
    assert_eq!(joined, root.join("Photos/2024/beach.jpg"));
    assert_eq!(safe_join(root, &[]).expect("empty"), root);
    for hostile in [
        vec![".."],
        vec!["Photos", "..", "..", "etc"],
        vec!["/etc/passwd"],
        vec!["a/../../b"],
        vec!["..\\..\\Windows"],
        vec!["C:\\Windows"],
        vec!["ok", ""],
        vec!["ok", "."],
        vec!["a\0b"],
        vec!["NUL"],
    ] {
        let error = safe_join(root, &hostile).expect_err(&format!("{hostile:?}"));
        let JoinError::InvalidComponent { index, .. } = error else { panic!("{error:?}") };
        assert_eq!(hostile.get(index).map(|c| validate_name(c).is_err()), Some(true));
    }
    let error = safe_join(root, &["ok", ".."]).expect_err("dot dot");
    assert_eq!(error.to_string(), "path component 2 is not a usable name: the name \"..\" means \"this folder\" or \"the parent folder\" in a path and cannot name a file");
}

#[test]
fn safe_join_output_has_only_plain_components_below_root() {
    let root = Path::new("share");
    let joined = safe_join(root, &["a b", ".hidden", "x..y", "é"]).expect("valid");
    assert!(joined.starts_with(root));
    let below: Vec<Component> = joined.strip_prefix(root).expect("below root").components().collect();
    assert_eq!(below.len(), 4);
    assert!(below.iter().all(|c| matches!(c, Component::Normal(_))));
}

#[test]
fn numbered_names_keep_the_extension() {
    assert_eq!(numbered_name("photo.jpg", 2), "photo (2).jpg");
    assert_eq!(numbered_name("archive.tar.gz", 3), "archive.tar (3).gz");
    assert_eq!(numbered_name(".bashrc", 2), ".bashrc (2)");
    assert_eq!(numbered_name("Makefile", 10), "Makefile (10)");
    assert_eq!(numbered_name("Mr. Smith", 2), "Mr. Smith (2)");
    let long = format!("{}.txt", "é".repeat(125));
    assert_eq!(validate_name(&long), Ok(()));
    let numbered = numbered_name(&long, 2);
    assert!(numbered.ends_with(" (2).txt") && numbered.len() <= MAX_NAME_BYTES, "{numbered}");
    assert_eq!(validate_name(&numbered), Ok(()));
}

#[test]
fn conflict_names_keep_the_extension_and_are_valid() {
    assert_eq!(conflict_name("notes.txt", "bob", "2025-03-01"), "notes (conflict from bob 2025-03-01).txt");
    assert_eq!(conflict_name(".bashrc", "bob", "2025-03-01"), ".bashrc (conflict from bob 2025-03-01)");
    assert_eq!(conflict_name("Makefile", "Grand-mère", "2025-03-01"), "Makefile (conflict from Grand-mère 2025-03-01)");
    assert_eq!(conflict_name("a.tar.gz", "bob", "2025-03-01"), "a.tar (conflict from bob 2025-03-01).gz");
    assert_eq!(conflict_name("a.txt", "../../evil\n", "2025-03-01"), "a (conflict from _.._evil_ 2025-03-01).txt");
    assert_eq!(conflict_name("a.txt", "  ", ""), "a (conflict from unknown).txt");
    assert_eq!(conflict_name("a.txt", "bob", "2025-03-01 10:30"), "a (conflict from bob 2025-03-01 10:30).txt");
}

#[test]
fn made_up_names_are_valid_for_any_valid_input() {
    let members = ["bob", "", "..", "a/b\\c", "CON", "x.", "\u{1b}[31m", "名前", &"m".repeat(500), " . "];
    let dates = ["2025-03-01", "", "../..", "\n", &"9".repeat(100)];
    let names = [
        "a",
        ".bashrc",
        "a.txt",
        "x.tar.gz",
        ".x.y",
        "Mr. Smith",
        &"n".repeat(255),
        &format!("{}.jpeg", "é".repeat(125)),
        &format!("a.{}", "e".repeat(16)),
        &format!("{}.{}", "s".repeat(200), "e".repeat(16)),
    ];
    for name in names {
        assert_eq!(validate_name(name), Ok(()), "test input {name:?}");
        for n in [2, 3, 99, u64::MAX] {
            let numbered = numbered_name(name, n);
            assert_eq!(validate_name(&numbered), Ok(()), "{numbered:?}");
            assert_ne!(collision_key(&numbered), collision_key(name));
        }
        for member in members {
            for date in dates {
                let conflict = conflict_name(name, member, date);
                assert_eq!(validate_name(&conflict), Ok(()), "{name:?} {member:?} {date:?} -> {conflict:?}");
                assert!(conflict.contains("(conflict from "), "{conflict:?}");
            }
        }
    }
}

#[test]
fn collision_keys_are_unicode_lower_case() {
    assert_eq!(collision_key("Photo.JPG"), collision_key("photo.jpg"));
    assert_eq!(collision_key("ÉTÉ"), collision_key("été"));
    // Documented limits: no full case folding, no normalisation.
    assert_ne!(collision_key("STRASSE"), collision_key("straße"));
    assert_ne!(collision_key("\u{e9}"), collision_key("e\u{301}"));
}
