//! Failures 1, 2, 3 and 9 of issue 9, and the file's owner and mode.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn a_free_name_is_accepted_and_the_probe_removed() {
    let dir = tempfile::tempdir().unwrap();
    Output::open(&dir.path().join("out.json"), None, 0o644).unwrap();
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

/// Failure 1: `of:/dev/null` replaced /dev/null with a file.
#[test]
fn devices_fifos_and_links_are_refused() {
    let e = Output::open(Path::new("/dev/null"), None, 0o644).unwrap_err().to_string();
    assert!(e.contains("is a character device, not a regular file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let e = Output::open(&fifo, None, 0o644).unwrap_err().to_string();
    assert!(e.contains("is a FIFO"), "{e}");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let e = Output::open(&link, None, 0o644).unwrap_err().to_string();
    assert!(e.contains("is a symbolic link"), "{e}");
    let e = Output::open(dir.path(), None, 0o644).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
}

/// Failure 2: a symlinked parent was written through.
#[test]
fn a_symlinked_directory_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Output::open(&link.join("out.json"), None, 0o644).unwrap_err().to_string();
    assert!(e.contains(&format!("{link:?} is a symbolic link")), "{e}");
    assert!(names(&real).is_empty());
}

/// Failure 2, later: the directory swapped for a link after prestart.
#[test]
fn the_directory_checked_is_the_one_written() {
    let dir = tempfile::tempdir().unwrap();
    let (checked, elsewhere) = (dir.path().join("checked"), dir.path().join("elsewhere"));
    fs::create_dir(&checked).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let out = Output::open(&checked.join("out.json"), None, 0o644).unwrap();
    let moved = dir.path().join("moved");
    fs::rename(&checked, &moved).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &checked).unwrap();
    out.write(b"{}\n").unwrap();
    assert_eq!(names(&elsewhere), Vec::<String>::new(), "nothing written through the link");
    assert_eq!(names(&moved), vec!["out.json".to_string()]);
}

/// Failure 9: predictable temporary names let anyone plant them.
#[test]
fn planted_temporary_names_do_not_block_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    for planted in [format!(".out.json.tmp-{pid}"), format!(".out.json.probe-{pid}")] {
        fs::create_dir(dir.path().join(planted)).unwrap();
    }
    let out = Output::open(&dir.path().join("out.json"), None, 0o644).unwrap();
    out.write(b"{}\n").unwrap();
    assert_eq!(fs::read(dir.path().join("out.json")).unwrap(), b"{}\n");
    assert_eq!(names(dir.path()).len(), 3, "only the planted names and the output: {:?}", names(dir.path()));
}

#[test]
fn temp_names_differ_and_fit_name_max() {
    let a = temp_name(OsStr::new("out.json"), "tmp", random_u64().unwrap());
    let b = temp_name(OsStr::new("out.json"), "tmp", random_u64().unwrap());
    assert_ne!(a, b);
    assert!(temp_name(OsStr::new(&"n".repeat(250)), "tmp", 1).len() <= 255);
}

#[test]
fn a_new_file_gets_the_mode_asked_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.json");
    Output::open(&new, None, 0o640).unwrap().write(b"{}").unwrap();
    assert_eq!(fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o640);
    let old = dir.path().join("old.json");
    fs::write(&old, "old").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::metadata(&old).unwrap();
    Output::open(&old, None, 0o644).unwrap().write(b"{}").unwrap();
    let after = fs::metadata(&old).unwrap();
    assert_eq!((after.mode() & 0o777, after.uid(), after.gid()), (0o600, before.uid(), before.gid()));
    assert_eq!(fs::read(&old).unwrap(), b"{}");
}

#[test]
fn a_failed_write_keeps_the_old_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    fs::write(&path, "old").unwrap();
    let out = Output::open(&path, None, 0o644).unwrap();
    // The target turned into a directory: the rename must fail.
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let e = out.write(b"{}").unwrap_err().to_string();
    assert!(e.contains("unchanged"), "{e}");
    assert_eq!(names(dir.path()), vec!["out.json".to_string()]);
}

/// Failure 3: `chattr +i` was only noticed at exit.
#[test]
fn immutable_and_append_only_targets_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    fs::write(&path, "old").unwrap();
    for (flag, word) in [(FS_IMMUTABLE_FL, "immutable"), (FS_APPEND_FL, "append-only")] {
        if !set_flags(&path, flag) {
            println!("SKIPPED: immutable_and_append_only_targets_are_refused_up_front: cannot set {word} here (needs root and a filesystem with attributes)");
            return;
        }
        let e = Output::open(&path, None, 0o644).map(|_| ()).unwrap_err().to_string();
        set_flags(&path, 0);
        assert!(e.contains(&format!("is {word}")), "{e}");
    }
}

fn set_flags(path: &Path, flags: libc::c_int) -> bool {
    let Ok(file) = fs::File::open(path) else { return false };
    let value: libc::c_long = flags as libc::c_long;
    // SAFETY: FS_IOC_SETFLAGS reads one long from `value`, alive for the call.
    unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &value) == 0 }
}

#[test]
fn allowed_directory_confines_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    fs::create_dir_all(allowed.join("sub")).unwrap();
    Output::open(&allowed.join("sub/out.json"), Some(&allowed), 0o644).unwrap();
    Output::open(&allowed.join("out.json"), Some(&allowed), 0o644).unwrap();
    let e = Output::open(&allowed.join("../out.json"), Some(&allowed), 0o644).unwrap_err().to_string();
    assert!(e.contains("outside the allowed directory"), "{e}");
}
