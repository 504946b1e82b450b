//! Hand-written scenarios for the replicated tree: the examples of Kleppmann
//! et al. (concurrent moves of one entry, moves into each other's subtrees),
//! deletes racing moves, late and duplicate ops, unknown parents, reserved
//! entries, and sibling name collisions.

use hearth_crdt::names::NameError;
use hearth_crdt::tree::{ApplyOutcome, Effect, EntryId, MoveOp, OpId, SkipReason, Tree};

const ROOT: EntryId = EntryId::ROOT;
const TRASH: EntryId = EntryId::TRASH;

fn e(n: u8) -> EntryId {
    EntryId::from_bytes([n; 16])
}

fn op(lamport: u64, actor: &str, entry: EntryId, parent: EntryId, name: &str) -> MoveOp {
    MoveOp { id: OpId::new(lamport, actor), entry, parent, name: name.to_owned() }
}

/// Applies `ops` in every order (all permutations for up to 6 ops) and
/// checks that every order folds to the same tree; returns it.
fn converge(ops: &[MoveOp]) -> Tree {
    assert!(ops.len() <= 6, "too many permutations");
    let reference = Tree::from_ops(ops.to_vec());
    reference.check_invariants().expect("invariants");
    let mut order: Vec<usize> = (0..ops.len()).collect();
    permute(&mut order, 0, &mut |order| {
        let mut tree = Tree::new();
        for &i in order {
            tree.apply(ops[i].clone());
            tree.check_invariants().expect("invariants after each op");
        }
        assert_eq!(tree, reference, "order {order:?} diverges");
    });
    reference
}

fn permute(items: &mut Vec<usize>, k: usize, visit: &mut dyn FnMut(&[usize])) {
    if k == items.len() {
        visit(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permute(items, k + 1, visit);
        items.swap(k, i);
    }
}

fn path(tree: &Tree, entry: EntryId) -> String {
    tree.display_path(entry).expect("known entry").join("/")
}

#[test]
fn create_rename_move_and_paths() {
    let (docs, notes) = (e(1), e(2));
    let mut tree = Tree::new();
    assert_eq!(tree.lamport_max(), 0);
    assert_eq!(tree.apply(op(1, "a", docs, ROOT, "Docs")), ApplyOutcome::Moved);
    assert_eq!(tree.apply(op(2, "a", notes, docs, "notes.txt")), ApplyOutcome::Moved);
    assert_eq!(path(&tree, notes), "Docs/notes.txt");
    assert_eq!(tree.path_of(notes), Some(vec![ROOT, docs, notes]));
    tree.apply(op(3, "a", notes, ROOT, "todo.txt"));
    assert_eq!(path(&tree, notes), "todo.txt");
    assert_eq!(tree.parent_of(notes), Some(ROOT));
    assert_eq!(tree.lamport_max(), 3);
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.children(ROOT).collect::<Vec<_>>(), vec![docs, notes]);
    assert_eq!(tree.children(docs).count(), 0);
    assert_eq!(tree.path_of(ROOT), Some(vec![ROOT]));
    assert_eq!(tree.display_path(ROOT), Some(vec![]));
    assert_eq!(tree.display_name(ROOT), None);
    assert_eq!(tree.parent_of(ROOT), None);
    assert_eq!(tree.path_of(e(9)), None);
    assert!(!tree.is_in_trash(e(9)));
    tree.check_invariants().expect("invariants");
}

#[test]
fn concurrent_moves_of_one_entry_keep_the_later_one() {
    // Paper, figure 1: replica A moves x under a, replica B moves x under b.
    let (a, b, x) = (e(1), e(2), e(3));
    let ops = [
        op(1, "A", a, ROOT, "a"),
        op(2, "A", b, ROOT, "b"),
        op(3, "A", x, ROOT, "x"),
        op(4, "A", x, a, "x"),
        op(4, "B", x, b, "x"),
    ];
    let tree = converge(&ops);
    assert_eq!(tree.parent_of(x), Some(b), "(4, B) is later than (4, A)");
    assert_eq!(tree.len(), 3);
}

#[test]
fn concurrent_moves_into_each_others_subtrees_make_no_cycle() {
    // Paper, figure 2: A moves a under b while B moves b under a.
    let (a, b) = (e(1), e(2));
    let ops = [op(1, "A", a, ROOT, "a"), op(2, "A", b, ROOT, "b"), op(3, "A", a, b, "a"), op(3, "B", b, a, "b")];
    let tree = converge(&ops);
    assert_eq!(tree.parent_of(a), Some(b));
    assert_eq!(tree.parent_of(b), Some(ROOT));
    assert_eq!(tree.effect_of(&OpId::new(3, "B")), Some(Effect::Skipped(SkipReason::Cycle)));
    assert_eq!(tree.skipped().count(), 1);

    // The skipped op was applied first on replica B and is undone there.
    let mut replica_b = Tree::from_ops(ops[..2].to_vec());
    assert_eq!(replica_b.apply(ops[3].clone()), ApplyOutcome::Moved);
    assert_eq!(replica_b.parent_of(b), Some(a));
    assert_eq!(replica_b.apply(ops[2].clone()), ApplyOutcome::Moved);
    assert_eq!(replica_b, tree);
}

#[test]
fn deep_cross_moves_make_no_cycle() {
    // a/b/c and d/e: A moves a under e while B moves d under c.
    let (a, b, c, d, x) = (e(1), e(2), e(3), e(4), e(5));
    let setup = [op(1, "A", a, ROOT, "a"), op(2, "A", b, a, "b"), op(3, "A", c, b, "c"), op(4, "A", d, ROOT, "d")];
    let mut ops = setup.to_vec();
    ops.push(op(5, "A", x, d, "x"));
    ops.push(op(6, "B", d, c, "d"));
    ops.push(op(6, "A", a, x, "a"));
    let tree = Tree::from_ops(ops.clone());
    // (6, A) first: a goes under x (a/.. now below d); then (6, B) would put
    // d under c, which is below a, below x, below d: skipped.
    assert_eq!(tree.parent_of(a), Some(x));
    assert_eq!(tree.parent_of(d), Some(ROOT));
    assert_eq!(path(&tree, c), "d/x/a/b/c");
    let late = ops.split_off(4);
    let mut reversed = Tree::from_ops(ops);
    for op in late.into_iter().rev() {
        reversed.apply(op);
    }
    assert_eq!(reversed, tree);
    tree.check_invariants().expect("invariants");
}

#[test]
fn a_move_into_itself_is_skipped() {
    let a = e(1);
    let mut tree = Tree::from_ops([op(1, "A", a, ROOT, "a")]);
    assert_eq!(tree.apply(op(2, "A", a, a, "a")), ApplyOutcome::Skipped(SkipReason::Cycle));
    assert_eq!(tree.parent_of(a), Some(ROOT));
    assert_eq!(tree.lamport_max(), 2, "skipped ops count for the Lamport clock");
}

#[test]
fn delete_versus_concurrent_move_out_keeps_the_moved_file() {
    let (dir, file) = (e(1), e(2));
    let ops = [
        op(1, "A", dir, ROOT, "Photos"),
        op(2, "A", file, dir, "beach.jpg"),
        op(3, "A", dir, TRASH, "Photos"),
        op(3, "B", file, ROOT, "beach.jpg"),
    ];
    let tree = converge(&ops);
    assert!(tree.is_in_trash(dir));
    assert!(!tree.is_in_trash(file));
    assert_eq!(path(&tree, file), "beach.jpg");
    assert_eq!(tree.len(), 2, "nothing is lost");
}

#[test]
fn delete_versus_concurrent_move_in_puts_the_file_in_the_trash() {
    let (dir, other, file) = (e(1), e(2), e(3));
    let ops = [
        op(1, "A", dir, ROOT, "Photos"),
        op(2, "A", other, ROOT, "Inbox"),
        op(3, "A", file, other, "beach.jpg"),
        op(4, "A", dir, TRASH, "Photos"),
        op(4, "B", file, dir, "beach.jpg"),
    ];
    let tree = converge(&ops);
    assert!(tree.is_in_trash(file), "moved into a folder deleted concurrently");
    assert_eq!(tree.path_of(file), Some(vec![TRASH, dir, file]));
    assert_eq!(path(&tree, file), "Photos/beach.jpg");
    // Restoring is a move back out.
    let mut tree = tree;
    tree.apply(op(5, "A", file, ROOT, "beach.jpg"));
    assert!(!tree.is_in_trash(file));
    assert!(tree.is_in_trash(TRASH));
    assert!(!tree.is_in_trash(ROOT));
}

#[test]
fn delete_versus_concurrent_rename_is_decided_by_the_order() {
    let file = e(1);
    let base = [op(1, "A", file, ROOT, "a.txt")];
    let delete_first = converge(&[base[0].clone(), op(2, "A", file, TRASH, "a.txt"), op(2, "B", file, ROOT, "b.txt")]);
    assert_eq!(delete_first.parent_of(file), Some(ROOT));
    assert_eq!(delete_first.display_name(file).as_deref(), Some("b.txt"));
    let rename_first = converge(&[base[0].clone(), op(2, "B", file, TRASH, "a.txt"), op(2, "A", file, ROOT, "b.txt")]);
    assert!(rename_first.is_in_trash(file));
}

#[test]
fn late_ops_are_undone_applied_and_redone() {
    let (a, b, c) = (e(1), e(2), e(3));
    let ops = [
        op(1, "A", a, ROOT, "a"),
        op(2, "A", b, ROOT, "b"),
        op(3, "A", c, a, "c"),
        op(4, "B", a, b, "a"),
        op(5, "A", b, c, "b"),
        op(6, "A", c, ROOT, "c"),
    ];
    let tree = converge(&ops);
    // (5, A) would put b under c, which is under a, under b: skipped.
    assert_eq!(tree.effect_of(&OpId::new(5, "A")), Some(Effect::Skipped(SkipReason::Cycle)));
    assert_eq!(tree.effect_of(&OpId::new(7, "A")), None);
    assert_eq!(path(&tree, a), "b/a");
    assert_eq!(path(&tree, c), "c");
}

#[test]
fn a_move_under_a_parent_not_yet_created_waits_for_it() {
    let (dir, file) = (e(1), e(2));
    let mut tree = Tree::new();
    assert_eq!(tree.apply(op(2, "A", file, dir, "f")), ApplyOutcome::Skipped(SkipReason::UnknownParent));
    assert!(!tree.contains(file));
    assert_eq!(tree.display_path(file), None);
    tree.check_invariants().expect("no orphan");
    assert_eq!(tree.apply(op(1, "A", dir, ROOT, "d")), ApplyOutcome::Moved);
    assert_eq!(tree.effect_of(&OpId::new(2, "A")), Some(Effect::Moved));
    assert_eq!(path(&tree, file), "d/f");
    // A writer that breaks the Lamport rule stays skipped.
    let mut tree = Tree::from_ops([op(5, "A", file, dir, "f"), op(6, "A", dir, ROOT, "d")]);
    assert!(!tree.contains(file));
    assert_eq!(tree.skipped().count(), 1);
    tree.apply(op(7, "A", file, dir, "f"));
    assert!(tree.contains(file));
}

#[test]
fn reserved_entries_never_move() {
    let a = e(1);
    let reserved = EntryId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
    assert!(reserved.is_reserved() && ROOT.is_reserved() && TRASH.is_reserved() && !a.is_reserved());
    let mut tree = Tree::from_ops([op(1, "A", a, ROOT, "a")]);
    assert_eq!(tree.apply(op(2, "A", ROOT, a, "root")), ApplyOutcome::Skipped(SkipReason::ReservedEntry));
    assert_eq!(tree.apply(op(3, "A", TRASH, ROOT, "trash")), ApplyOutcome::Skipped(SkipReason::ReservedEntry));
    assert_eq!(tree.apply(op(4, "A", reserved, ROOT, "x")), ApplyOutcome::Skipped(SkipReason::ReservedEntry));
    assert_eq!(tree.apply(op(5, "A", a, reserved, "a")), ApplyOutcome::Skipped(SkipReason::UnknownParent));
    assert_eq!(tree.apply(op(6, "A", a, TRASH, "a")), ApplyOutcome::Moved);
    assert_eq!(tree.len(), 1);
    assert_eq!(tree.children(TRASH).collect::<Vec<_>>(), vec![a]);
}

#[test]
fn hostile_names_are_skipped() {
    let a = e(1);
    let mut tree = Tree::new();
    let long = "y".repeat(256);
    let hostile = ["", ".", "..", "a/b", "..\\x", "/etc", "a\0b", "a\nb", "CON", "nul.txt", "x.", "x ", long.as_str()];
    for (i, name) in hostile.iter().enumerate() {
        let outcome = tree.apply(op(i as u64 + 1, "A", a, ROOT, name));
        assert!(matches!(outcome, ApplyOutcome::Skipped(SkipReason::InvalidName(_))), "{name:?}: {outcome:?}");
    }
    assert!(tree.is_empty());
    assert_eq!(tree.skipped().count(), hostile.len());
    assert!(matches!(tree.skipped().next(), Some((_, SkipReason::InvalidName(NameError::Empty)))));
}

#[test]
fn duplicates_are_idempotent_and_reused_ids_resolve_the_same_everywhere() {
    let (a, b) = (e(1), e(2));
    let mut tree = Tree::new();
    let create = op(1, "A", a, ROOT, "a");
    assert_eq!(tree.apply(create.clone()), ApplyOutcome::Moved);
    assert_eq!(tree.apply(create.clone()), ApplyOutcome::Duplicate);
    assert_eq!(tree.apply_all([create.clone(), create.clone()]), 0);
    assert_eq!(tree.log_len(), 1);

    // A broken actor stamps two different ops with (2, "B").
    let first = op(2, "B", b, ROOT, "zzz");
    let second = op(2, "B", b, ROOT, "aaa");
    let mut one = Tree::from_ops([create.clone()]);
    assert_eq!(one.apply(first.clone()), ApplyOutcome::Moved);
    assert_eq!(one.apply(second.clone()), ApplyOutcome::IdReused { replaced: true });
    let mut two = Tree::from_ops([create.clone()]);
    assert_eq!(two.apply(second.clone()), ApplyOutcome::Moved);
    assert_eq!(two.apply(first.clone()), ApplyOutcome::IdReused { replaced: false });
    let three = Tree::from_ops([first.clone(), create.clone(), second.clone()]);
    let mut four = Tree::from_ops([create.clone(), first.clone()]);
    assert_eq!(four.apply_all([second.clone()]), 0, "not a new id");
    let mut five = Tree::from_ops([create, second]);
    assert_eq!(five.apply_all([first]), 0);
    assert_eq!(one, two);
    assert_eq!(one, three);
    assert_eq!(one, four);
    assert_eq!(one, five);
    assert_eq!(one.display_name(b).as_deref(), Some("aaa"));
}

#[test]
fn colliding_siblings_are_numbered_in_op_order() {
    let (x, y, z) = (e(1), e(2), e(3));
    let ops = [op(1, "B", y, ROOT, "photo.jpg"), op(1, "A", x, ROOT, "Photo.JPG"), op(2, "C", z, ROOT, "PHOTO.jpg")];
    let tree = converge(&ops);
    assert_eq!(tree.display_name(x).as_deref(), Some("Photo.JPG"), "(1, A) is the oldest");
    assert_eq!(tree.display_name(y).as_deref(), Some("photo (2).jpg"));
    assert_eq!(tree.display_name(z).as_deref(), Some("PHOTO (3).jpg"));
    assert_eq!(tree.children(ROOT).collect::<Vec<_>>(), vec![x, y, z]);
    assert_eq!(
        tree.display_names(ROOT),
        vec![(x, "Photo.JPG".to_owned()), (y, "photo (2).jpg".to_owned()), (z, "PHOTO (3).jpg".to_owned())]
    );
    // The stored names are untouched.
    assert_eq!(tree.placement(y).map(|p| p.name.as_str()), Some("photo.jpg"));
}

#[test]
fn numbers_skip_names_that_are_taken() {
    let (a, b, c, d) = (e(1), e(2), e(3), e(4));
    let ops = [
        op(1, "A", a, ROOT, "a.txt"),
        op(2, "A", b, ROOT, "A (2).txt"),
        op(3, "A", c, ROOT, "A.TXT"),
        op(4, "A", d, ROOT, "a (2).TXT"),
    ];
    let tree = converge(&ops);
    let names: Vec<String> = tree.display_names(ROOT).into_iter().map(|(_, name)| name).collect();
    // Group "a (2).txt" is numbered first: d becomes "a (2) (2).TXT"; then c
    // cannot be "A (2).TXT" (taken by b), so it is "A (3).TXT".
    assert_eq!(names, ["A (2).txt", "a (2) (2).TXT", "a.txt", "A (3).TXT"]);
    tree.check_invariants().expect("distinct display names");
}

#[test]
fn numbers_stay_distinct_when_long_names_are_shortened() {
    // Two groups of 255-byte names that differ only in their last letter:
    // numbering shortens the stems to the same prefix, so the second group
    // must take the next number.
    let stem = "x".repeat(250);
    let ops = [
        op(1, "A", e(1), ROOT, &format!("{stem}a.txt")),
        op(2, "A", e(2), ROOT, &format!("{stem}A.txt")),
        op(3, "A", e(3), ROOT, &format!("{stem}b.txt")),
        op(4, "A", e(4), ROOT, &format!("{stem}B.txt")),
    ];
    let tree = Tree::from_ops(ops);
    let short = &stem[..247];
    assert_eq!(tree.display_name(e(2)), Some(format!("{short} (2).txt")));
    assert_eq!(tree.display_name(e(4)), Some(format!("{short} (3).txt")));
    tree.check_invariants().expect("distinct display names");
}

#[test]
fn renaming_the_holder_hands_the_name_over() {
    let (a, b) = (e(1), e(2));
    let mut tree = Tree::from_ops([op(1, "A", a, ROOT, "notes"), op(2, "B", b, ROOT, "Notes")]);
    assert_eq!(tree.display_name(b).as_deref(), Some("Notes (2)"));
    tree.apply(op(3, "A", a, ROOT, "old notes"));
    assert_eq!(tree.display_name(b).as_deref(), Some("Notes"));
    // Moving back in makes a the newcomer: it is now the numbered one.
    tree.apply(op(4, "A", a, ROOT, "notes"));
    assert_eq!(tree.display_name(a).as_deref(), Some("notes (2)"));
    assert_eq!(tree.display_name(b).as_deref(), Some("Notes"));
}

#[test]
fn collisions_in_moved_folders_dotfiles_and_the_trash() {
    let (d1, d2, f1, f2, g1, g2) = (e(1), e(2), e(3), e(4), e(5), e(6));
    let ops = [
        op(1, "A", d1, ROOT, "d1"),
        op(2, "A", d2, ROOT, "d2"),
        op(3, "A", f1, d1, ".bashrc"),
        op(3, "B", f2, d2, ".BASHRC"),
        op(4, "B", f2, d1, ".BASHRC"),
        op(5, "A", g1, TRASH, "x.tar.gz"),
    ];
    let mut tree = converge(&ops);
    assert_eq!(path(&tree, f2), "d1/.BASHRC (2)");
    tree.apply(op(6, "B", g2, TRASH, "X.tar.gz"));
    assert_eq!(tree.display_name(g2).as_deref(), Some("X.tar (2).gz"));
    assert!(tree.is_in_trash(g2));
    tree.check_invariants().expect("invariants");
}

#[test]
fn ops_round_trip_through_serde() {
    let original = op(7, "actor", e(3), ROOT, "été.txt");
    let json = serde_json::to_string(&original).expect("serialize");
    let back: MoveOp = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, original);
    assert_eq!(format!("{}", ROOT), "ROOT");
    assert_eq!(format!("{}", e(0xab)), "ab".repeat(16));
}
