//! Backup, restore and verify in-process, where the races they must survive can be
//! staged step by step: a delete between the catalog snapshot and the blob copy, an
//! upload holding a blob's lock while verify looks at its bytes.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use filegate::catalog::files::FileRow;
use filegate::catalog::maintenance as m;
use filegate::files::digest::Hashes;
use filegate::files::{delete_file, store_file, Content, Placement, Source};
use filegate::maintenance::{backup, restore, verify};
use filegate::store::Store;

/// Stores `bytes` as a new file under `key`, as an upload would.
fn add_file(env: &TestEnv, key: &str, bytes: &[u8]) -> FileRow {
    let store = &env.state.store;
    let mut t = store.create_temp().unwrap();
    t.write_all(bytes).unwrap();
    let mut h = Hashes::default();
    h.update(bytes);
    let p = Placement {
        file_id: filegate::ids::new_id(NOW_MS / 1000),
        name: key.into(),
        object_key: key.into(),
        pipeline_id: None,
        job_id: None,
        app_id: None,
        autograph: false,
        expires_at: 0,
        archives: Default::default(),
    };
    let content = Content {
        source: Source::Temp(t),
        digests: h.finish(),
        head: bytes.iter().take(64).copied().collect(),
    };
    let mut c = env.state.catalog.conn().unwrap();
    store_file(&mut c, store, &p, content, NOW_MS, |_| Ok(())).unwrap()
}

fn delete(env: &TestEnv, id: &str) {
    let mut c = env.state.catalog.conn().unwrap();
    delete_file(&mut c, &env.state.store, id).unwrap().unwrap();
}

fn verify(env: &TestEnv, checksums: bool, repair: bool) -> verify::Report {
    let opts = verify::Options {
        checksums,
        repair,
        now_ms: NOW_MS,
    };
    verify::run(&env.state.catalog, &env.state.store, opts, &mut |_, _| {}).unwrap()
}

fn kinds(r: &verify::Report) -> Vec<(verify::Kind, String)> {
    r.findings.iter().map(|f| (f.kind, f.subject.clone())).collect()
}

fn check(dir: &Path) -> restore::Check {
    restore::check(dir, true, &mut |_, _| {}).unwrap()
}

fn backup_opts() -> backup::Options {
    backup::Options {
        copy: false,
        now_ms: NOW_MS,
    }
}

#[test]
fn a_file_deleted_between_snapshot_and_blob_copy_is_left_out_and_the_backup_restores() {
    let env = TestEnv::new();
    let a = add_file(&env, "a", b"only a has these bytes");
    let b = add_file(&env, "b", b"b and c share these bytes");
    let c = add_file(&env, "c", b"b and c share these bytes");
    let d = add_file(&env, "d", b"d");
    let dest = env.dir.path().join("backup");

    let snap = backup::snapshot(&env.state.catalog, env.data_dir(), &dest).unwrap();
    delete(&env, &a.id); // its blob goes with it
    delete(&env, &b.id); // its blob stays: c uses it
    add_file(&env, "e", b"uploaded after the snapshot");
    let r = snap
        .finish(&env.state.catalog, &env.state.store, backup_opts())
        .unwrap();

    assert_eq!(r.deleted_meanwhile, std::slice::from_ref(&a.id));
    assert!(r.missing.is_empty());
    assert_eq!((r.files, r.blobs), (3, 2), "b, c and d; their two blobs");
    assert_eq!(r.bytes, (b"b and c share these bytes".len() + 1) as u64);
    let ck = check(&dest);
    assert!(ck.problems.is_empty(), "{:?}", ck.problems);
    assert_eq!((ck.files, ck.blobs, ck.known_missing), (3, 2, 0));

    let target = env.dir.path().join("restored");
    let rr = restore::run(&dest, &target, restore::Options::default(), &mut |_, _| {}).unwrap();
    assert_eq!(rr.linked + rr.copied, 2);
    let restored = TestEnv::with_config(|cfg| cfg.storage.data_dir = target.clone());
    let rep = verify(&restored, true, false);
    assert_eq!(rep.problems_left(), 0, "{:?}", rep.findings);
    let conn = restored.state.catalog.conn().unwrap();
    let mut ids: Vec<String> = m::blob_page(&conn, "", 100)
        .unwrap()
        .into_iter()
        .flat_map(|b| b.files.into_iter().map(|f| f.id))
        .collect();
    ids.sort();
    let mut want = vec![b.id, c.id, d.id];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn bytes_missing_from_the_data_dir_are_marked_in_the_backup_and_reported() {
    let env = TestEnv::new();
    let a = add_file(&env, "a", b"these bytes will vanish");
    add_file(&env, "b", b"these stay");
    std::fs::remove_file(env.state.store.path(&a.blob_id).unwrap()).unwrap();
    let dest = env.dir.path().join("backup");
    let r = backup::run(
        &env.state.catalog,
        &env.state.store,
        env.data_dir(),
        &dest,
        backup_opts(),
    )
    .unwrap();
    assert_eq!(r.missing, [(a.blob_id.clone(), vec![a.id.clone()])]);
    assert!(r.deleted_meanwhile.is_empty());
    let ck = check(&dest);
    assert!(ck.problems.is_empty(), "{:?}", ck.problems);
    assert_eq!((ck.files, ck.blobs, ck.known_missing), (2, 1, 1));
}

#[test]
fn backup_refuses_a_non_empty_dir_and_one_inside_the_data_dir() {
    let env = TestEnv::new();
    let full = env.dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    for dest in [full, env.data_dir().join("backups/today")] {
        let e = backup::snapshot(&env.state.catalog, env.data_dir(), &dest)
            .err()
            .unwrap();
        assert!(matches!(e, filegate::maintenance::Error::Refused(_)), "{e}");
    }
    assert!(!env.data_dir().join("backups").exists());
}

#[test]
fn verify_leaves_alone_a_blob_whose_upload_holds_its_lock() {
    let env = TestEnv::new();
    add_file(&env, "a", b"a");
    // Another "process" (its own Store, so only the flock is shared) has persisted the
    // bytes of an upload and not yet committed the row.
    let other = Store::open(env.data_dir()).unwrap();
    let mut h = Hashes::default();
    h.update(b"being uploaded");
    let id = h.finish().sha256;
    let guard = other.lock_blob(&id).unwrap();
    let mut t = other.create_temp().unwrap();
    t.write_all(b"being uploaded").unwrap();
    t.persist(&id).unwrap();

    let (catalog, store) = (env.state.catalog.clone(), env.state.store.clone());
    let started = Instant::now();
    let repair = std::thread::spawn(move || {
        let opts = verify::Options {
            checksums: false,
            repair: true,
            now_ms: NOW_MS,
        };
        let r = verify::run(&catalog, &store, opts, &mut |_, _| {}).unwrap();
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    {
        let c = env.state.catalog.conn().unwrap();
        let mut row = add_file_row(&id, 14);
        row.id = "0123456789abcdef01234567".into();
        filegate::catalog::files::insert(&c, &row).unwrap();
    }
    drop(guard);
    let (r, took) = repair.join().unwrap();
    assert!(
        took >= Duration::from_millis(400),
        "verify waited for the lock ({took:?})"
    );
    assert!(
        r.findings.is_empty(),
        "an adopted blob is no orphan: {:?}",
        r.findings
    );
    assert!(env.state.store.exists(&id));
}

fn add_file_row(blob: &str, size: i64) -> FileRow {
    FileRow {
        id: String::new(),
        name: "u".into(),
        title: "u".into(),
        kind: "file".into(),
        subtype: None,
        mime_type: "application/octet-stream".into(),
        size,
        md5: String::new(),
        sha256: blob.into(),
        blob_id: blob.into(),
        autograph: false,
        object_key: "u".into(),
        pipeline_id: None,
        job_id: None,
        app_id: None,
        created_at: NOW_MS,
        updated_at: NOW_MS,
        expires_at: 0,
        revoked_before: 0,
        missing_since: 0,
    }
}

#[test]
fn checksums_find_same_size_damage_and_repair_marks_it_until_the_bytes_are_back() {
    let env = TestEnv::new();
    let a = add_file(&env, "a", b"original bytes");
    let path = env.state.store.path(&a.blob_id).unwrap();
    std::fs::write(&path, b"ORIGINAL BYTES").unwrap();

    assert_eq!(verify(&env, false, false).problems_left(), 0, "sizes agree");
    let r = verify(&env, true, true);
    assert_eq!(kinds(&r), [(verify::Kind::Damaged, a.blob_id.clone())]);
    assert_eq!(r.problems_left(), 0, "repaired by marking");
    // Without --checksums the mark is still backed by a hash: damage stays known.
    let r = verify(&env, false, false);
    assert_eq!(kinds(&r), [(verify::Kind::KnownMissing, a.blob_id.clone())]);
    assert_eq!(r.problems_left(), 0);

    std::fs::write(&path, b"original bytes").unwrap();
    let r = verify(&env, false, false);
    assert_eq!(kinds(&r), [(verify::Kind::Back, a.blob_id.clone())]);
    assert_eq!(r.problems_left(), 1, "a stale mark hides a good file");
    verify(&env, false, true);
    let c = env.state.catalog.conn().unwrap();
    assert!(!filegate::catalog::files::get(&c, &a.id)
        .unwrap()
        .unwrap()
        .is_missing());
    assert!(verify(&env, false, false).findings.is_empty());
}

#[test]
fn repair_fixes_refs_and_drops_unused_blob_rows_with_their_bytes() {
    let env = TestEnv::new();
    let a = add_file(&env, "a", b"a");
    let b = add_file(&env, "b", b"b");
    {
        let c = env.state.catalog.conn().unwrap();
        c.execute("UPDATE blobs SET refs = 3 WHERE id = ?1", [&a.blob_id])
            .unwrap();
        // b's row goes behind the catalog's back, leaving its blob row unused.
        c.execute("DELETE FROM files WHERE id = ?1", [&b.id]).unwrap();
    }
    let r = verify(&env, false, false);
    let mut k = kinds(&r);
    k.sort_by(|x, y| x.1.cmp(&y.1));
    let mut want = vec![
        (verify::Kind::Refs, a.blob_id.clone()),
        (verify::Kind::Unused, b.blob_id.clone()),
    ];
    want.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(k, want);
    assert_eq!(verify(&env, false, true).problems_left(), 0);
    assert!(!env.state.store.exists(&b.blob_id));
    assert!(env.state.store.exists(&a.blob_id));
    assert!(verify(&env, true, false).findings.is_empty());
}

#[test]
fn a_data_dir_left_by_an_unfinished_restore_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(filegate::maintenance::RESTORE_MARKER), b"").unwrap();
    let mut config = filegate::config::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let e = filegate::state::AppState::open(config, filegate::clock::FixedClock::new(NOW_MS))
        .err()
        .unwrap();
    assert!(e.to_string().contains("did not finish"), "{e}");
    assert!(!dir.path().join("catalog.sqlite3").exists());
}
